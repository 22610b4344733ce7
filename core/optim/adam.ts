import { tf, type Tensor } from '../tf.js';
import { adamwStep, nativeActive } from '../native/fused.js';
import type { Parameter } from '../nn/module.js';
import { MisconfigurationError, showValue } from '../errors.js';
import { Optimizer, checkNumber, type BaseHyperparams, type ParamGroup, type ParamGroupInput, type ParamState } from './optimizer.js';

/** Hyperparameters of {@link Adam} and {@link AdamW}, per group. */
export interface AdamHyperparams extends BaseHyperparams {
  /** Decay rates of the first and second moment estimates. */
  betas: [number, number];
  /** Added to the denominator for numerical stability. */
  eps: number;
  /** Use the running maximum of the second moment (Reddi et al. 2018). */
  amsgrad: boolean;
}

/** Options of {@link Adam} / {@link AdamW}: any hyperparameter, defaults as in PyTorch. */
export type AdamOptions = Partial<AdamHyperparams>;

/**
 * Adam with L2 weight decay added to the gradient (`g ← g + wd·p`), the formulas of
 * `torch.optim.Adam`: moments `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, update
 * `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)` (with `max(vmax, v)` when amsgrad).
 * State tensors: `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq`, as PyTorch names them.
 *
 * @example
 * const opt = new Adam(model.parameters(), { lr: 1e-3 });
 */
export class Adam extends Optimizer<AdamHyperparams> {
  /**
   * @param params Parameters, or groups with per-group overrides.
   * @param options Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0, amsgrad false.
   * @throws MisconfigurationError on an invalid hyperparameter.
   */
  constructor(params: readonly Parameter[] | ReadonlyArray<ParamGroupInput<AdamHyperparams>>, options: AdamOptions = {}) {
    super(params, adamDefaults(options));
  }

  /** True in {@link AdamW}: weight decay shrinks the weights instead of entering the gradient. */
  protected get decoupledWeightDecay(): boolean {
    return false;
  }

  protected override validateGroup(group: ParamGroup<AdamHyperparams>, index: number): void {
    super.validateGroup(group, index);
    const betas: unknown = group.betas;
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new MisconfigurationError(`\`betas\` must be a pair [beta1, beta2] with each in [0, 1), got ${showValue(betas)} (parameter group ${index})`);
    }
    checkNumber(betas[0], 'betas[0]', index, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    checkNumber(betas[1], 'betas[1]', index, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    checkNumber(group.eps, 'eps', index, (v) => v >= 0, 'a non-negative number');
    if (typeof group.amsgrad !== 'boolean') {
      throw new MisconfigurationError(`\`amsgrad\` must be true or false, got ${showValue(group.amsgrad)} (parameter group ${index})`);
    }
  }

  /**
   * Whether steps go through the fused native AdamW kernel (core/native/fused.ts
   * `adamwStep`: one pass over p, g, m and v, updated in place) instead of about a dozen tf
   * ops and new tensors per parameter. Only on the `lightclip-cpu` backend, and only where
   * that kernel computes exactly this update: AdamW, or Adam without weight decay (L2 decay
   * enters the gradient, which the kernel does not do), never amsgrad. Tests set it to false
   * to compare the two paths.
   */
  useFused = true;

  protected override updateParam(p: Parameter, grad: Tensor, group: ParamGroup<AdamHyperparams>, state: ParamState): void {
    const { lr, weightDecay: wd, eps, amsgrad } = group;
    const [beta1, beta2] = group.betas;
    if (this.useFused && !amsgrad && (this.decoupledWeightDecay || wd === 0) && nativeActive()) {
      const m = this.stateTensor(state, 'exp_avg', () => tf.zerosLike(p.variable));
      const v = this.stateTensor(state, 'exp_avg_sq', () => tf.zerosLike(p.variable));
      // Same formula as below; the bias corrections are computed in float64 from state.step there too.
      adamwStep([{ param: p.variable, grad, m, v }], { lr, beta1, beta2, eps, weightDecay: this.decoupledWeightDecay ? wd : 0, step: state.step });
      return;
    }
    let param: Tensor = p.variable;
    let g = grad;
    if (wd !== 0) {
      if (this.decoupledWeightDecay) param = tf.mul(param, 1 - lr * wd);
      else g = tf.add(g, tf.mul(param, wd));
    }
    const expAvg = this.stateTensor(state, 'exp_avg', () => tf.zerosLike(p.variable));
    const expAvgSq = this.stateTensor(state, 'exp_avg_sq', () => tf.zerosLike(p.variable));
    const m = tf.add(tf.mul(expAvg, beta1), tf.mul(g, 1 - beta1));
    const v = tf.add(tf.mul(expAvgSq, beta2), tf.mul(tf.square(g), 1 - beta2));
    expAvg.assign(m);
    expAvgSq.assign(v);
    // Bias corrections in float64 JS numbers, as PyTorch computes them in Python floats.
    const biasCorrection1 = 1 - beta1 ** state.step;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** state.step);
    let second: Tensor = v;
    if (amsgrad) {
      const maxSq = this.stateTensor(state, 'max_exp_avg_sq', () => tf.zerosLike(p.variable));
      second = tf.maximum(maxSq, v);
      maxSq.assign(second);
    }
    const denom = tf.add(tf.div(tf.sqrt(second), biasCorrection2Sqrt), eps);
    const stepSize = lr / biasCorrection1;
    p.variable.assign(tf.sub(param, tf.mul(tf.div(m, denom), stepSize)));
  }
}

function adamDefaults(options: AdamOptions): AdamHyperparams {
  return { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, ...dropUndefined(options) };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
