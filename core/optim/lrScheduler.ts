import { MisconfigurationError, showValue } from '../errors.js';
import type { Optimizer } from './optimizer.js';

/** What {@link LRScheduler.stateDict} saves (plain JSON). */
export interface LRSchedulerState {
  /** Number of `step()` calls since construction (0 right after construction). */
  lastEpoch: number;
  /** Each group's initial lr, the base every multiplier applies to. */
  baseLrs: number[];
  /** Each group's lr after the last step. */
  lastLr: number[];
}

/**
 * Base class of learning-rate schedules, as `torch.optim.lr_scheduler.LRScheduler`. Each
 * group's lr is a closed-form function of the step counter and the group's `initialLr`
 * (stored on the group on first attachment, as PyTorch's `initial_lr`), so a resumed run
 * gets exactly the same values. Construction sets the lr for step 0; call `step()` after
 * every `optimizer.step()`.
 *
 * Subclasses implement {@link LRScheduler.computeLr} and call `this.initialStep()` at the
 * end of their constructor (their options are not yet set while this constructor runs).
 */
export abstract class LRScheduler {
  /** The optimizer whose groups this schedule drives. */
  readonly optimizer: Optimizer;
  protected baseLrs: number[];
  private _lastEpoch = -1;
  private lastLr: number[] = [];

  constructor(optimizer: Optimizer) {
    this.optimizer = optimizer;
    for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr as number);
  }

  /** The step counter (PyTorch's `last_epoch`): 0 after construction, +1 per `step()`. */
  get lastEpoch(): number {
    return this._lastEpoch;
  }

  /** Advances the schedule by one step and writes the new lr into every group. */
  step(): void {
    this._lastEpoch += 1;
    this.applyLrs(this.baseLrs.map((base, i) => this.computeLr(this._lastEpoch, base, i)));
  }

  /** Each group's lr as set by the last `step()` (or the constructor). */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** The schedule's position, for a checkpoint. */
  stateDict(): LRSchedulerState {
    return { lastEpoch: this._lastEpoch, baseLrs: [...this.baseLrs], lastLr: [...this.lastLr] };
  }

  /**
   * Restores a position saved by {@link LRScheduler.stateDict} and writes the saved lr
   * into the groups (so the order of loading optimizer and scheduler does not matter).
   * @throws MisconfigurationError if the state is malformed or has a different number of groups.
   */
  loadStateDict(state: LRSchedulerState): void {
    const s: unknown = state;
    const n = this.optimizer.paramGroups.length;
    const isLrList = (x: unknown): x is number[] =>
      Array.isArray(x) && x.length === n && x.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (
      typeof s !== 'object' || s === null ||
      !('lastEpoch' in s) || typeof s.lastEpoch !== 'number' || !Number.isInteger(s.lastEpoch) || s.lastEpoch < 0 ||
      !('baseLrs' in s) || !isLrList(s.baseLrs) || !('lastLr' in s) || !isLrList(s.lastLr)
    ) {
      throw new MisconfigurationError(
        `LR scheduler state must be { lastEpoch: integer ≥ 0, baseLrs: number[${n}], lastLr: number[${n}] } for an optimizer with ${n} group(s), got ${showValue(state)}`,
      );
    }
    this._lastEpoch = s.lastEpoch;
    this.baseLrs = [...s.baseLrs];
    this.optimizer.paramGroups.forEach((g, i) => (g.initialLr = this.baseLrs[i]));
    this.applyLrs([...s.lastLr]);
  }

  /** The lr of group `groupIndex` at step `step`, given its initial lr `baseLr`. */
  protected abstract computeLr(step: number, baseLr: number, groupIndex: number): number;

  /** Sets the step-0 lr (PyTorch's `_initial_step`); call last in subclass constructors. */
  protected initialStep(): void {
    this._lastEpoch = -1;
    this.step();
  }

  private applyLrs(lrs: number[]): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]));
    this.lastLr = lrs;
  }
}

/** Options of {@link CosineWarmupScheduler}; give at most one of `minLr` and `minLrRatio`. */
export interface CosineWarmupOptions {
  /** Steps of linear warmup up to the base lr (integer ≥ 0): step s < warmupSteps gets base·(s+1)/warmupSteps. */
  warmupSteps: number;
  /** Step at which the cosine reaches the minimum (integer > warmupSteps). */
  totalSteps: number;
  /** Final lr, the same for every group (default 0). */
  minLr?: number;
  /** Final lr as a fraction of each group's base lr, in [0, 1]. */
  minLrRatio?: number;
}

/**
 * Linear warmup then cosine decay, the CLIP schedule (DESIGN §4) as open_clip's `cosine_lr`:
 * lr = base·(s+1)/warmup for s < warmupSteps, then
 * `min + (base − min)·(1 + cos(π·(s − warmup)/(total − warmup)))/2` until totalSteps, and
 * `min` after. The `+1` is open_clip's: the first optimizer step already moves the weights
 * (base/warmup) and the last warmup step reaches the base lr. A warmup from lr 0 (s/warmup,
 * as train-CLIP's CosineAnnealingWarmupRestarts) spends step 0 on AdamW's moment estimates
 * with no update, so every later step runs one step behind PyTorch's schedule.
 *
 * @example
 * const sched = new CosineWarmupScheduler(opt, { warmupSteps: 2000, totalSteps: 100_000 });
 * @throws MisconfigurationError on invalid or conflicting options.
 */
export class CosineWarmupScheduler extends LRScheduler {
  private readonly warmupSteps: number;
  private readonly totalSteps: number;
  private readonly minLrFor: (baseLr: number) => number;

  constructor(optimizer: Optimizer, options: CosineWarmupOptions) {
    super(optimizer);
    const { warmupSteps, totalSteps, minLr, minLrRatio } = options;
    requireInt(warmupSteps, 'warmupSteps', 0, 'an integer ≥ 0');
    requireInt(totalSteps, 'totalSteps', warmupSteps + 1, `an integer greater than \`warmupSteps\` (${warmupSteps})`);
    if (minLr !== undefined && minLrRatio !== undefined) {
      throw new MisconfigurationError(`give at most one of \`minLr\` and \`minLrRatio\`, got minLr ${showValue(minLr)} and minLrRatio ${showValue(minLrRatio)}`);
    }
    if (minLr !== undefined && (typeof minLr !== 'number' || !Number.isFinite(minLr) || minLr < 0)) {
      throw new MisconfigurationError(`\`minLr\` must be a non-negative number, got ${showValue(minLr)}`);
    }
    if (minLrRatio !== undefined && (typeof minLrRatio !== 'number' || !(minLrRatio >= 0 && minLrRatio <= 1))) {
      throw new MisconfigurationError(`\`minLrRatio\` must be a number in [0, 1], got ${showValue(minLrRatio)}`);
    }
    this.warmupSteps = warmupSteps;
    this.totalSteps = totalSteps;
    this.minLrFor = minLrRatio !== undefined ? (base) => base * minLrRatio : () => minLr ?? 0;
    this.initialStep();
  }

  protected override computeLr(step: number, baseLr: number): number {
    if (step < this.warmupSteps) return (baseLr * (step + 1)) / this.warmupSteps;
    const min = this.minLrFor(baseLr);
    if (step >= this.totalSteps) return min;
    const progress = (step - this.warmupSteps) / (this.totalSteps - this.warmupSteps);
    return min + 0.5 * (1 + Math.cos(Math.PI * progress)) * (baseLr - min);
  }
}

/** Options of {@link ConstantLR}. */
export interface ConstantLROptions {
  /** Multiplier applied during the first `totalIters` steps (default 1). */
  factor?: number;
  /** Steps during which `factor` applies (default 0: a plain constant lr). */
  totalIters?: number;
}

/**
 * `torch.optim.lr_scheduler.ConstantLR`: lr = base·factor for steps < totalIters, base
 * after. Unlike PyTorch (factor 1/3, 5 iterations) the defaults keep the lr constant.
 * @throws MisconfigurationError on an invalid option.
 */
export class ConstantLR extends LRScheduler {
  private readonly factor: number;
  private readonly totalIters: number;

  constructor(optimizer: Optimizer, options: ConstantLROptions = {}) {
    super(optimizer);
    const { factor = 1, totalIters = 0 } = options;
    if (typeof factor !== 'number' || !(factor >= 0 && factor <= 1)) {
      throw new MisconfigurationError(`\`factor\` must be a number in [0, 1], got ${showValue(factor)}`);
    }
    requireInt(totalIters, 'totalIters', 0, 'an integer ≥ 0');
    this.factor = factor;
    this.totalIters = totalIters;
    this.initialStep();
  }

  protected override computeLr(step: number, baseLr: number): number {
    return step < this.totalIters ? baseLr * this.factor : baseLr;
  }
}

/** Options of {@link StepLR}. */
export interface StepLROptions {
  /** Steps between decays (integer ≥ 1). */
  stepSize: number;
  /** Multiplier per decay (default 0.1, as PyTorch). */
  gamma?: number;
}

/**
 * `torch.optim.lr_scheduler.StepLR` in closed form: lr = base·gamma^⌊step/stepSize⌋.
 * @throws MisconfigurationError on an invalid option.
 */
export class StepLR extends LRScheduler {
  private readonly stepSize: number;
  private readonly gamma: number;

  constructor(optimizer: Optimizer, options: StepLROptions) {
    super(optimizer);
    const { stepSize, gamma = 0.1 } = options;
    requireInt(stepSize, 'stepSize', 1, 'an integer ≥ 1');
    if (typeof gamma !== 'number' || !Number.isFinite(gamma) || gamma <= 0) {
      throw new MisconfigurationError(`\`gamma\` must be a positive number, got ${showValue(gamma)}`);
    }
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.initialStep();
  }

  protected override computeLr(step: number, baseLr: number): number {
    return baseLr * this.gamma ** Math.floor(step / this.stepSize);
  }
}

/** A multiplier of the initial lr as a function of the step. */
export type LrLambda = (step: number) => number;

/**
 * `torch.optim.lr_scheduler.LambdaLR`: lr = base·fn(step), with one function for all
 * groups or one per group. The functions are not saved by `stateDict()`; pass the same
 * ones when resuming.
 * @throws MisconfigurationError if the number of functions differs from the number of groups.
 */
export class LambdaLR extends LRScheduler {
  private readonly fns: LrLambda[];

  constructor(optimizer: Optimizer, fn: LrLambda | LrLambda[]) {
    super(optimizer);
    const n = optimizer.paramGroups.length;
    if (Array.isArray(fn) && fn.length !== n) {
      throw new MisconfigurationError(`\`fn\` must be one function or one per parameter group (${n}), got ${fn.length} functions`);
    }
    this.fns = Array.isArray(fn) ? [...fn] : Array.from({ length: n }, () => fn);
    if (this.fns.some((f) => typeof f !== 'function')) {
      throw new MisconfigurationError('`fn` must be a function (step) => multiplier or an array of them');
    }
    this.initialStep();
  }

  protected override computeLr(step: number, baseLr: number, groupIndex: number): number {
    return baseLr * this.fns[groupIndex](step);
  }
}

function requireInt(value: unknown, name: string, min: number, expected: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new MisconfigurationError(`\`${name}\` must be ${expected}, got ${showValue(value)}`);
  }
}
