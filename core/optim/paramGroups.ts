import { MisconfigurationError, showValue } from '../errors.js';
import type { Parameter } from '../nn/module.js';

/** Options of {@link weightDecayParamGroups}. */
export interface WeightDecayGroupOptions {
  /**
   * Which parameters get no weight decay. Default: open_clip's rule,
   * {@link defaultNoDecay}.
   */
  exclude?: (name: string, p: Parameter) => boolean;
  /** Learning rate for both groups (otherwise the optimizer's default applies). */
  lr?: number;
}

/** One group produced by {@link weightDecayParamGroups}; any optimizer accepts it. */
export interface WeightDecayGroup {
  params: Parameter[];
  weightDecay: number;
  lr?: number;
}

/**
 * open_clip's exclusion rule (`open_clip_train/main.py`): gains, biases and embeddings
 * that are vectors (`ndim < 2`), any name containing `bn`, `ln` or `bias` (norm layers,
 * `ln_1`, `ln_final`), and `logit_scale` get no weight decay. The name tests are
 * substring tests, exactly as open_clip's `"bn" in n`.
 */
export function defaultNoDecay(name: string, p: Parameter): boolean {
  return p.ndim < 2 || /bn|ln|bias/.test(name) || name.includes('logit_scale');
}

/**
 * Splits named parameters into a decay group and a no-decay group, as the CLIP recipes
 * do (DESIGN §4: wd 0.2 on weights, none on gains, biases, embeddings and logit_scale).
 * Frozen parameters are left out, as open_clip filters on `requires_grad`; both groups are
 * always returned (possibly empty) so optimizer state dicts keep the same layout.
 *
 * @param namedParams `module.namedParameters()`.
 * @param weightDecay Decay for the first group (≥ 0); the second group gets 0.
 * @returns `[decay, noDecay]`.
 * @throws MisconfigurationError if `weightDecay` or `lr` is invalid.
 * @example
 * const opt = new AdamW(weightDecayParamGroups(model.namedParameters(), 0.2), { lr: 5e-4 });
 */
export function weightDecayParamGroups(
  namedParams: Iterable<readonly [string, Parameter]>,
  weightDecay: number,
  options: WeightDecayGroupOptions = {},
): [WeightDecayGroup, WeightDecayGroup] {
  if (typeof weightDecay !== 'number' || !Number.isFinite(weightDecay) || weightDecay < 0) {
    throw new MisconfigurationError(`\`weightDecay\` must be a non-negative number, got ${showValue(weightDecay)}`);
  }
  const { lr, exclude = defaultNoDecay } = options;
  if (lr !== undefined && (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)) {
    throw new MisconfigurationError(`\`lr\` must be a non-negative number, got ${showValue(lr)}`);
  }
  const decay: Parameter[] = [];
  const noDecay: Parameter[] = [];
  for (const [name, p] of namedParams) {
    if (!p.requiresGrad) continue;
    (exclude(name, p) ? noDecay : decay).push(p);
  }
  const withLr = (g: WeightDecayGroup): WeightDecayGroup => (lr === undefined ? g : { ...g, lr });
  return [withLr({ params: decay, weightDecay }), withLr({ params: noDecay, weightDecay: 0 })];
}
