import type { Parameter } from '../nn/module.js';
import { Adam, type AdamHyperparams, type AdamOptions } from './adam.js';
import type { ParamGroupInput } from './optimizer.js';

/**
 * AdamW (Loshchilov & Hutter 2019) as `torch.optim.AdamW`: decoupled weight decay
 * `p ← p − lr·wd·p` first, then the Adam update with bias correction. CLIP recipes use
 * betas [0.9, 0.98], eps 1e-6 and wd 0.2 for ViTs (DESIGN §4).
 *
 * @example
 * const opt = new AdamW(weightDecayParamGroups(model.namedParameters(), 0.2), { lr: 5e-4, betas: [0.9, 0.98], eps: 1e-6 });
 */
export class AdamW extends Adam {
  /**
   * @param params Parameters, or groups with per-group overrides.
   * @param options Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 1e-2 (PyTorch's), amsgrad false.
   * @throws MisconfigurationError on an invalid hyperparameter.
   */
  constructor(params: readonly Parameter[] | ReadonlyArray<ParamGroupInput<AdamHyperparams>>, options: AdamOptions = {}) {
    super(params, { ...options, weightDecay: options.weightDecay ?? 1e-2 });
  }

  protected override get decoupledWeightDecay(): boolean {
    return true;
  }
}
