/**
 * PyTorch's parameter initialisers (`torch.nn.init`), drawing every random number through
 * {@link defaultGenerator} so that `seedEverything(seed)` reproduces a model's initial weights.
 *
 * Each initialiser takes a shape and returns a new tensor (the caller owns it); use
 * {@link assignInit} to re-initialise an existing parameter in place, as PyTorch's
 * trailing-underscore functions (`nn.init.normal_(p, std=0.02)`) do.
 */
import { MisconfigurationError, showValue } from '../errors.js';
import { defaultGenerator } from '../random.js';
import { tf, type Tensor, type Variable } from '../tf.js';
import type { Parameter } from './module.js';

/** Nonlinearities understood by {@link calculateGain} (PyTorch's names). */
export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/**
 * PyTorch's `calculate_gain`: the recommended scale of the weights for a nonlinearity.
 * `param` is leaky_relu's negative slope (default 0.01).
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new MisconfigurationError(`\`nonlinearity\` must be one of linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu; got ${showValue(nonlinearity)}`);
  }
}

/**
 * PyTorch's `_calculate_fan_in_and_fan_out` for a weight in PyTorch layout (`[out, in]` or
 * `[out, in/groups, kh, kw]`): fan in = in × receptive field, fan out = out × receptive field.
 */
export function calculateFanInAndFanOut(shape: readonly number[]): [number, number] {
  if (shape.length < 2) {
    throw new MisconfigurationError(`fan in and fan out need a shape of at least 2 dimensions, got [${shape.join(', ')}]`);
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1]! * receptive, shape[0]! * receptive];
}

/** Uniform on [low, high). */
export function uniform(shape: readonly number[], low = 0, high = 1): Tensor {
  return tf.randomUniform([...shape], low, high, 'float32', defaultGenerator.nextSeed());
}

/** Options of {@link normal} and {@link truncNormal}. */
export interface NormalOptions {
  mean?: number;
  std?: number;
}

/** Normal with the given mean (default 0) and standard deviation (default 1). */
export function normal(shape: readonly number[], options: NormalOptions = {}): Tensor {
  const std = options.std ?? 1;
  if (!(std >= 0)) throw new MisconfigurationError(`\`std\` must be >= 0, got ${showValue(std)}`);
  return tf.randomNormal([...shape], options.mean ?? 0, std, 'float32', defaultGenerator.nextSeed());
}

/** Options of {@link truncNormal}: PyTorch's `trunc_normal_(mean, std, a, b)`. */
export interface TruncNormalOptions extends NormalOptions {
  /** Lower cut-off, an absolute value (not in units of std), default -2 as in PyTorch. */
  a?: number;
  /** Upper cut-off, an absolute value, default 2. */
  b?: number;
}

/**
 * Normal restricted to [a, b] (absolute bounds, as PyTorch's `trunc_normal_`; note that
 * tfjs's `truncatedNormal` cuts at 2 std instead). Out-of-range draws are redrawn; this
 * runs at initialisation only, so the host read of the "any left?" flag costs nothing that matters.
 */
export function truncNormal(shape: readonly number[], options: TruncNormalOptions = {}): Tensor {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  const a = options.a ?? -2;
  const b = options.b ?? 2;
  if (!(a < b)) throw new MisconfigurationError(`\`a\` must be < \`b\`, got a=${showValue(a)}, b=${showValue(b)}`);
  if (!(std >= 0)) throw new MisconfigurationError(`\`std\` must be >= 0, got ${showValue(std)}`);
  let t = normal(shape, { mean, std });
  // Each round redraws only the rejected entries; 200 rounds leave nothing unless [a, b]
  // holds almost none of the mass, and the final clip keeps even that case in range.
  for (let round = 0; round < 200; round++) {
    const bad = tf.tidy(() => tf.logicalOr(tf.less(t, a), tf.greater(t, b)));
    const anyBad = tf.tidy(() => tf.any(bad).dataSync()[0] === 1);
    if (!anyBad) {
      bad.dispose();
      return t;
    }
    const next = tf.tidy(() => tf.where(bad, normal(shape, { mean, std }), t));
    bad.dispose();
    t.dispose();
    t = next;
  }
  const clipped = tf.clipByValue(t, a, b);
  t.dispose();
  return clipped;
}

/** Options of the Kaiming (He) initialisers. */
export interface KaimingOptions {
  /** Negative slope of leaky_relu; PyTorch's Linear/Conv default uses sqrt(5). Default 0. */
  a?: number;
  /** Preserve the variance of the forward ('fanIn', default) or backward ('fanOut') pass. */
  mode?: 'fanIn' | 'fanOut';
  /** Default 'leaky_relu', as in PyTorch. */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(shape: readonly number[], options: KaimingOptions): number {
  const mode = options.mode ?? 'fanIn';
  if (mode !== 'fanIn' && mode !== 'fanOut') {
    throw new MisconfigurationError(`\`mode\` must be "fanIn" or "fanOut", got ${showValue(mode)}`);
  }
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  const fan = mode === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(options.nonlinearity ?? 'leaky_relu', options.a ?? 0);
  return fan === 0 ? 0 : gain / Math.sqrt(fan);
}

/**
 * `kaiming_uniform_`: U(-bound, bound) with bound = gain·sqrt(3 / fan). With `a = sqrt(5)`
 * (PyTorch's default for Linear and Conv weights) the bound is 1/sqrt(fanIn).
 */
export function kaimingUniform(shape: readonly number[], options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shape, options);
  return uniform(shape, -bound, bound);
}

/** `kaiming_normal_`: N(0, std²) with std = gain / sqrt(fan). */
export function kaimingNormal(shape: readonly number[], options: KaimingOptions = {}): Tensor {
  return normal(shape, { std: kaimingStd(shape, options) });
}

/** `xavier_uniform_`: U(-b, b), b = gain·sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform(shape: readonly number[], gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(shape, -bound, bound);
}

/** `xavier_normal_`: N(0, std²), std = gain·sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal(shape: readonly number[], gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  return normal(shape, { std: gain * Math.sqrt(2 / (fanIn + fanOut)) });
}

/**
 * PyTorch's default Linear/Conv weight: `kaiming_uniform_(w, a=sqrt(5))`, i.e.
 * U(-1/sqrt(fanIn), 1/sqrt(fanIn)), for a weight in PyTorch layout.
 */
export function defaultWeight(shape: readonly number[]): Tensor {
  return kaimingUniform(shape, { a: Math.sqrt(5) });
}

/**
 * PyTorch's default Linear/Conv bias: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) where fanIn comes
 * from the layer's weight shape (zeros when fanIn is 0, as PyTorch).
 */
export function defaultBias(outFeatures: number, weightShape: readonly number[]): Tensor {
  const [fanIn] = calculateFanInAndFanOut(weightShape);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform([outFeatures], -bound, bound);
}

/** All zeros. */
export function zeros(shape: readonly number[]): Tensor {
  return tf.zeros([...shape]);
}

/** All ones. */
export function ones(shape: readonly number[]): Tensor {
  return tf.ones([...shape]);
}

/** Every element equal to `value`. */
export function constant(shape: readonly number[], value: number): Tensor {
  return tf.fill([...shape], value);
}

/**
 * Re-initialises a parameter or buffer in place from an initialiser, PyTorch-style:
 * `assignInit(block.attn.inProjWeight, (s) => init.normal(s, { std: 0.02 }))`.
 */
export function assignInit(target: Parameter | Variable, initializer: (shape: number[]) => Tensor): void {
  const v = target instanceof tf.Variable ? target : target.variable;
  // The tidy frees the initialiser's tensor (and any cast); the variable keeps its own reference.
  tf.tidy(() => {
    const value = initializer([...v.shape]);
    v.assign(value.dtype === v.dtype ? value : tf.cast(value, v.dtype));
  });
}
