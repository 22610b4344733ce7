import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import { checkInt } from './checks.js';
import * as F from './functional.js';
import * as init from './init.js';
import { Module, type Parameter, type TensorModule } from './module.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * `y = x·Wᵀ + b` over the last axis (PyTorch's `nn.Linear`). `weight` is `[out, in]` and
 * `bias` `[out]`, initialised as PyTorch: U(±1/sqrt(in)) for both.
 */
export class Linear extends Module implements TensorModule {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  /** @throws MisconfigurationError when a feature count is not a positive integer. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    checkInt('inFeatures', inFeatures);
    checkInt('outFeatures', outFeatures);
    const shape = [outFeatures, inFeatures];
    this.weight = this.registerParameter('weight', init.defaultWeight(shape));
    this.bias = (options.bias ?? true) ? this.registerParameter('bias', init.defaultBias(outFeatures, shape)) : null;
  }

  /** `x` is `[..., inFeatures]`; returns `[..., outFeatures]`. */
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight.variable, this.bias?.variable);
  }
}

/** Returns its input unchanged (PyTorch's `nn.Identity`), a placeholder in configurable models. */
export class Identity extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Flattens axes `startDim..endDim` into one (PyTorch's `nn.Flatten`, default `1..-1`).
 * Images are NHWC in lightclip, so flattening a feature map orders elements (h, w, c),
 * not PyTorch's (c, h, w): a Linear after it needs its weight permuted to match PyTorch.
 */
export class Flatten extends Module implements TensorModule {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
    if (!Number.isInteger(startDim) || !Number.isInteger(endDim)) {
      throw new MisconfigurationError(`\`startDim\` and \`endDim\` must be integers, got ${showValue(startDim)} and ${showValue(endDim)}`);
    }
  }

  forward(x: Tensor): Tensor {
    const s = this.startDim < 0 ? this.startDim + x.rank : this.startDim;
    const e = this.endDim < 0 ? this.endDim + x.rank : this.endDim;
    if (s < 0 || e >= x.rank || s > e) {
      throw new Error(`Flatten(${this.startDim}, ${this.endDim}) does not fit an input of shape [${x.shape.join(', ')}]`);
    }
    const merged = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
    return tf.reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
  }
}
