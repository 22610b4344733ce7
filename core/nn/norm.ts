import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor, type Variable } from '../tf.js';
import { checkInt } from './checks.js';
import * as F from './functional.js';
import * as init from './init.js';
import { Module, type Parameter, type TensorModule } from './module.js';

/** Options of the batch-norm layers, PyTorch's keyword arguments. */
export interface BatchNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /**
   * Weight of the new batch in the running statistics (default 0.1):
   * `running = (1 − momentum)·running + momentum·batch`. `null` gives the cumulative
   * average (factor 1/numBatchesTracked), as PyTorch's `momentum=None`.
   */
  momentum?: number | null;
  /** Learn a per-channel scale `weight` and shift `bias` (default true). */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval uses batch statistics. */
  trackRunningStats?: boolean;
}

/**
 * Shared batch normalisation over every axis but the last (channels-last). State-dict names
 * are PyTorch's: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`.
 *
 * In training mode the batch mean and biased variance normalise the input, and the running
 * statistics are updated with the **unbiased** variance (n/(n−1)), as PyTorch does. In eval
 * mode the running statistics are used.
 */
export abstract class BatchNormBase extends Module implements TensorModule {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: Variable | null;
  readonly runningVar: Variable | null;
  readonly numBatchesTracked: Variable | null;
  readonly eps: number;
  readonly momentum: number | null;

  /** @throws MisconfigurationError for a non-positive `numFeatures`, `eps` or a `momentum` outside [0, 1]. */
  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    checkInt('numFeatures', numFeatures);
    this.eps = options.eps ?? 1e-5;
    if (!(this.eps > 0)) throw new MisconfigurationError(`\`eps\` must be > 0, got ${showValue(this.eps)}`);
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    if (this.momentum !== null && !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new MisconfigurationError(`\`momentum\` must be in [0, 1] or null, got ${showValue(this.momentum)}`);
    }
    const affine = options.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', init.ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', init.zeros([numFeatures])) : null;
    if (options.trackRunningStats ?? true) {
      this.runningMean = this.registerBuffer('running_mean', init.zeros([numFeatures]));
      this.runningVar = this.registerBuffer('running_var', init.ones([numFeatures]));
      this.numBatchesTracked = this.registerBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
    } else {
      this.runningMean = this.runningVar = this.numBatchesTracked = null;
    }
  }

  /** Throws when `x` does not have a shape this layer accepts. */
  protected abstract checkInput(x: Tensor): void;

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const n = x.size / this.numFeatures;
    const useBatchStats = this.training || this.runningMean === null;
    if (this.training && n <= 1) {
      throw new Error(`${this.constructor.name}: expected more than 1 value per channel when training, got input [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      let mean: Tensor;
      let variance: Tensor;
      if (useBatchStats) {
        ({ mean, variance } = tf.moments(x, axes));
        if (this.training) this.updateRunningStats(mean, variance, n);
      } else {
        mean = this.runningMean!;
        variance = this.runningVar!;
      }
      // Fold the statistics and the affine parameters into one per-channel scale and
      // shift so that only two passes (mul, add) touch the full activation.
      let scale = tf.rsqrt(tf.add(variance, this.eps));
      if (this.weight) scale = tf.mul(scale, this.weight.variable);
      let shift = tf.neg(tf.mul(mean, scale));
      if (this.bias) shift = tf.add(shift, this.bias.variable);
      return tf.add(tf.mul(x, scale), shift);
    });
  }

  private updateRunningStats(mean: Tensor, variance: Tensor, n: number): void {
    const rm = this.runningMean;
    const rv = this.runningVar;
    const nbt = this.numBatchesTracked;
    if (!rm || !rv || !nbt) return;
    tf.tidy(() => {
      const count = tf.add(nbt, tf.scalar(1, 'int32'));
      nbt.assign(count);
      // momentum null: cumulative average, computed on the device so forward never syncs.
      const m: Tensor | number = this.momentum ?? tf.div(1, tf.cast(count, 'float32'));
      const keep = typeof m === 'number' ? 1 - m : tf.sub(1, m);
      const unbiased = tf.mul(variance, n / (n - 1));
      // `assign` is not a taped op, so no gradient reaches the running statistics.
      rm.assign(tf.add(tf.mul(rm, keep), tf.mul(mean, m)));
      rv.assign(tf.add(tf.mul(rv, keep), tf.mul(unbiased, m)));
    });
  }
}

/**
 * Batch normalisation of images (PyTorch's `nn.BatchNorm2d`).
 *
 * **Layout.** Input is **NHWC** `[B, H, W, C]` (lightclip's image layout, see `Conv2d`), so
 * statistics are taken over B, H and W per channel on the last axis; parameters and
 * buffers are `[C]` vectors with PyTorch's names, so state dicts interchange with PyTorch.
 */
export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new Error(`BatchNorm2d expects NHWC input [B, H, W, ${this.numFeatures}], got [${x.shape.join(', ')}]`);
    }
  }
}

/**
 * Batch normalisation of features `[B, C]` or sequences `[B, L, C]` (PyTorch's
 * `nn.BatchNorm1d`; note channels-last, where PyTorch takes `[B, C, L]`).
 */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if ((x.rank !== 2 && x.rank !== 3) || x.shape[x.rank - 1] !== this.numFeatures) {
      throw new Error(`BatchNorm1d expects [B, ${this.numFeatures}] or [B, L, ${this.numFeatures}], got [${x.shape.join(', ')}]`);
    }
  }
}

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learn `weight` (ones) and `bias` (zeros) of shape `normalizedShape` (default true). */
  elementwiseAffine?: boolean;
  /** With `elementwiseAffine`, also learn the bias (default true). */
  bias?: boolean;
}

/**
 * Layer normalisation over the trailing axes given by `normalizedShape` (PyTorch's
 * `nn.LayerNorm`): `(x − mean)/sqrt(var + eps)·weight + bias`.
 */
export class LayerNorm extends Module implements TensorModule {
  readonly normalizedShape: number[];
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  /** @throws MisconfigurationError for non-positive sizes or `eps`. */
  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (this.normalizedShape.length === 0) throw new MisconfigurationError('`normalizedShape` must have at least one dimension, got []');
    this.normalizedShape.forEach((d) => checkInt('normalizedShape', d));
    this.eps = options.eps ?? 1e-5;
    if (!(this.eps > 0)) throw new MisconfigurationError(`\`eps\` must be > 0, got ${showValue(this.eps)}`);
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', init.ones(this.normalizedShape)) : null;
    this.bias = affine && (options.bias ?? true) ? this.registerParameter('bias', init.zeros(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight?.variable, this.bias?.variable, this.eps);
  }
}
