import { tf, type Tensor } from './tf.js';
import type { Parameter } from './nn/module.js';

/**
 * tfjs records gradients only inside a function it runs (no retained graph as in
 * PyTorch), so lightclip's `backward` takes the loss *function*: it runs `lossFn`,
 * differentiates it with respect to every parameter that requires grad, and adds the
 * result to each `param.grad`. Returns the loss value (caller disposes it).
 *
 * A vector–Jacobian product (gradient caching) is the same call with the scalar
 * `sum(output * upstream)`.
 */
export function backward(params: readonly Parameter[], lossFn: () => Tensor, scale = 1): Tensor {
  const trainable = params.filter((p) => p.requiresGrad);
  if (trainable.length === 0) {
    return tf.tidy(() => lossFn());
  }
  const { value, grads } = tf.variableGrads(() => {
    const loss = lossFn();
    if (loss.rank !== 0) throw new Error(`backward() needs a scalar loss, got shape [${loss.shape.join(', ')}]`);
    return (scale === 1 ? loss : tf.mul(loss, scale)) as tf.Scalar;
  }, trainable.map((p) => p.variable));
  for (const p of trainable) {
    const g = grads[p.variable.name];
    if (g) p.accumulateGrad(g);
  }
  if (scale === 1) return value;
  const unscaled = tf.div(value, scale);
  value.dispose();
  return unscaled;
}
