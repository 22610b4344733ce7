import { tf, type Tensor } from '../tf.js';
import type { Parameter } from '../nn/module.js';
import { MisconfigurationError, showValue } from '../errors.js';
import { Optimizer, checkNumber, type BaseHyperparams, type ParamGroup, type ParamGroupInput, type ParamState } from './optimizer.js';

/** Hyperparameters of {@link SGD}, per group. */
export interface SGDHyperparams extends BaseHyperparams {
  /** Momentum factor (0 disables the momentum buffer). */
  momentum: number;
  /** Dampening applied to the gradient entering the momentum buffer. */
  dampening: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch). */
  nesterov: boolean;
}

/** Options of {@link SGD}: any hyperparameter, defaults as in PyTorch. */
export type SGDOptions = Partial<SGDHyperparams>;

/**
 * Stochastic gradient descent with the formulas of `torch.optim.SGD`:
 * `d = g + wd·p`; with momentum, `buf ← d` on the first step and
 * `buf ← μ·buf + (1−dampening)·d` after, then `d = d + μ·buf` (nesterov) or `d = buf`;
 * finally `p ← p − lr·d`. The state tensor is `momentum_buffer`, as PyTorch names it.
 *
 * @example
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
 */
export class SGD extends Optimizer<SGDHyperparams> {
  /**
   * @param params Parameters, or groups with per-group overrides.
   * @param options Defaults: lr 1e-3, momentum 0, dampening 0, weightDecay 0, nesterov false.
   * @throws MisconfigurationError on an invalid hyperparameter or nesterov without momentum.
   */
  constructor(params: readonly Parameter[] | ReadonlyArray<ParamGroupInput<SGDHyperparams>>, options: SGDOptions = {}) {
    const defaults: SGDHyperparams = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (defaults as unknown as Record<string, unknown>)[k] = v;
    super(params, defaults);
  }

  protected override validateGroup(group: ParamGroup<SGDHyperparams>, index: number): void {
    super.validateGroup(group, index);
    checkNumber(group.momentum, 'momentum', index, (v) => v >= 0, 'a non-negative number');
    checkNumber(group.dampening, 'dampening', index, () => true, 'a number');
    if (typeof group.nesterov !== 'boolean') {
      throw new MisconfigurationError(`\`nesterov\` must be true or false, got ${showValue(group.nesterov)} (parameter group ${index})`);
    }
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new MisconfigurationError(
        `\`nesterov\` requires \`momentum\` > 0 and \`dampening\` = 0, got momentum ${group.momentum} and dampening ${group.dampening} (parameter group ${index})`,
      );
    }
  }

  protected override updateParam(p: Parameter, grad: Tensor, group: ParamGroup<SGDHyperparams>, state: ParamState): void {
    const { lr, weightDecay: wd, momentum, dampening, nesterov } = group;
    let d = wd !== 0 ? tf.add(grad, tf.mul(p.variable, wd)) : grad;
    if (momentum !== 0) {
      let buf = state.tensors.get('momentum_buffer');
      if (buf === undefined) {
        // PyTorch starts the buffer at the first gradient itself, undamped.
        buf = this.stateTensor(state, 'momentum_buffer', () => tf.clone(d));
      } else {
        buf.assign(tf.add(tf.mul(buf, momentum), tf.mul(d, 1 - dampening)));
      }
      d = nesterov ? tf.add(d, tf.mul(buf, momentum)) : buf;
    }
    p.variable.assign(tf.sub(p.variable, tf.mul(d, lr)));
  }
}
