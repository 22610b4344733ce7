import { tf, type Tensor } from '../tf.js';
import { MisconfigurationError, showValue } from '../errors.js';
import type { Parameter } from '../nn/module.js';

/**
 * Rescales gradients so that their global norm is at most `maxNorm`, as
 * `torch.nn.utils.clip_grad_norm_`: the norm is taken over all gradients together (the
 * norm of the per-tensor norms), and every gradient is multiplied by
 * `maxNorm / (norm + 1e-6)` only when that factor is below 1. Parameters without a
 * gradient are ignored.
 *
 * @param params Parameters whose `grad` to clip (replaced in place).
 * @param maxNorm Largest allowed global norm (> 0).
 * @param normType The p of the p-norm (> 0), or `Infinity` for the max-abs norm.
 * @returns The global norm before clipping (0 when no parameter has a gradient).
 * @throws MisconfigurationError if `maxNorm` or `normType` is invalid.
 */
export function clipGradNorm(params: Iterable<Parameter>, maxNorm: number, normType = 2): number {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new MisconfigurationError(`\`maxNorm\` must be a positive number, got ${showValue(maxNorm)}`);
  }
  if (typeof normType !== 'number' || !(normType > 0)) {
    throw new MisconfigurationError(`\`normType\` must be a positive number or Infinity, got ${showValue(normType)}`);
  }
  const withGrad = [...params].filter((p): p is Parameter & { grad: Tensor } => p.grad !== null);
  if (withGrad.length === 0) return 0;
  const total = tf.tidy(() => {
    // tf.norm only takes orders 1, 2 and Infinity for vectors; other p use the definition.
    const norms = withGrad.map((p) => pNorm(tf.reshape(p.grad, [-1]), normType));
    return pNorm(tf.stack(norms), normType);
  });
  // One device→host read per call: the caller needs the norm (for logging) as a number.
  const norm = total.dataSync()[0];
  total.dispose();
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const p of withGrad) {
      const scaled = tf.mul(p.grad, coef);
      p.grad.dispose();
      p.grad = scaled;
    }
  }
  return norm;
}

/**
 * Clamps every gradient element to `[-value, value]`, as `torch.nn.utils.clip_grad_value_`.
 * @throws MisconfigurationError if `value` is not a positive number.
 */
export function clipGradValue(params: Iterable<Parameter>, value: number): void {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new MisconfigurationError(`\`value\` must be a positive number, got ${showValue(value)}`);
  }
  for (const p of params) {
    if (p.grad === null) continue;
    const clipped = tf.clipByValue(p.grad, -value, value);
    p.grad.dispose();
    p.grad = clipped;
  }
}

function pNorm(x: Tensor, p: number): Tensor {
  if (p === Infinity) return tf.max(tf.abs(x));
  if (p === 1) return tf.sum(tf.abs(x));
  if (p === 2) return tf.sqrt(tf.sum(tf.square(x)));
  return tf.pow(tf.sum(tf.pow(tf.abs(x), p)), 1 / p);
}
