import { MisconfigurationError } from '../errors.js';

/** Options of `LightningModule.log`, as Lightning's `self.log`. */
export interface LogOptions {
  /** Show in the progress bar (default false). */
  progBar?: boolean;
  /** Send to the loggers (default true). */
  logger?: boolean;
  /** Log the value of each step (default: true in training steps, false elsewhere). */
  onStep?: boolean;
  /** Aggregate over the epoch (default: false in training steps, true elsewhere). */
  onEpoch?: boolean;
  /** How epoch values combine (default 'mean', weighted by `batchSize`). */
  reduceFx?: 'mean' | 'sum' | 'max' | 'min';
  /** Weight of this value in the epoch mean (default 1). */
  batchSize?: number;
  /** Reduce across processes before logging (DDP). */
  syncDist?: boolean;
}

interface Entry {
  name: string;
  onStep: boolean;
  onEpoch: boolean;
  progBar: boolean;
  logger: boolean;
  reduceFx: 'mean' | 'sum' | 'max' | 'min';
  syncDist: boolean;
  step: number | null;
  sum: number;
  weight: number;
  max: number;
  min: number;
  count: number;
}

/** Metrics of one step or epoch, split by destination. */
export interface MetricsSplit {
  logger: Record<string, number>;
  progBar: Record<string, number>;
  callback: Record<string, number>;
}

/** Hooks in which logging defaults to per-step (Lightning's `_FxValidator` defaults). */
const STEP_HOOKS = new Set([
  'trainingStep',
  'onTrainBatchStart',
  'onTrainBatchEnd',
  'onBeforeBackward',
  'onAfterBackward',
  'onBeforeOptimizerStep',
  'onBeforeZeroGrad',
  'optimizerStep',
]);

/** Hooks from which `log()` may not be called (nothing would aggregate the value). */
const FORBIDDEN_HOOKS = new Set(['setup', 'teardown', 'configureOptimizers', 'onFitStart', 'onFitEnd', 'predictStep', 'onSaveCheckpoint', 'onLoadCheckpoint']);

/** Cross-process reduction of metric values (identity on one process). */
export type MetricReducer = (values: Record<string, number>, ops: Record<string, 'mean' | 'sum' | 'max' | 'min'>) => Promise<Record<string, number>>;

/**
 * Aggregates `log()` calls of one loop (train, validation or test), as Lightning's
 * `_ResultCollection`: per-step values and per-epoch reductions (weighted mean, sum, max,
 * min). A key logged with both `onStep` and `onEpoch` appears as `name_step` and
 * `name_epoch` for the loggers, and `name` for callbacks.
 */
export class ResultCollection {
  private entries = new Map<string, Entry>();

  constructor(private readonly reducer: MetricReducer = async (v) => v) {}

  /** Records one value logged from `hook`. */
  log(hook: string | null, name: string, value: number, opts: LogOptions): void {
    if (hook === null || FORBIDDEN_HOOKS.has(hook)) {
      throw new MisconfigurationError(`You can't \`log(${JSON.stringify(name)})\` in \`${hook ?? 'this context'}\`: log from a step or an epoch/batch hook.`);
    }
    const stepHook = STEP_HOOKS.has(hook);
    const onStep = opts.onStep ?? stepHook;
    const onEpoch = opts.onEpoch ?? !stepHook;
    const reduceFx = opts.reduceFx ?? 'mean';
    const weight = opts.batchSize ?? 1;
    let e = this.entries.get(name);
    if (!e) {
      e = {
        name,
        onStep,
        onEpoch,
        progBar: opts.progBar ?? false,
        logger: opts.logger ?? true,
        reduceFx,
        syncDist: opts.syncDist ?? false,
        step: null,
        sum: 0,
        weight: 0,
        max: -Infinity,
        min: Infinity,
        count: 0,
      };
      this.entries.set(name, e);
    } else if (e.reduceFx !== reduceFx || e.onStep !== onStep || e.onEpoch !== onEpoch) {
      throw new MisconfigurationError(`\`log(${JSON.stringify(name)})\` was called with different \`onStep\`/\`onEpoch\`/\`reduceFx\` options within one loop.`);
    }
    e.step = value;
    e.sum += reduceFx === 'sum' ? value : value * weight;
    e.weight += weight;
    e.max = Math.max(e.max, value);
    e.min = Math.min(e.min, value);
    e.count++;
  }

  /** Values of the last step for `onStep` keys; clears the step values. */
  async stepMetrics(): Promise<MetricsSplit> {
    const entries = [...this.entries.values()].filter((e) => e.onStep && e.step !== null);
    const out = await this.split(entries, (e) => e.step!, (e) => (e.onEpoch ? `${e.name}_step` : e.name));
    for (const e of entries) e.step = null;
    return out;
  }

  /** Epoch reductions for `onEpoch` keys; resets the collection. */
  async epochMetrics(): Promise<MetricsSplit> {
    const entries = [...this.entries.values()].filter((e) => e.onEpoch && e.count > 0);
    const out = await this.split(entries, reduceEntry, (e) => (e.onStep ? `${e.name}_epoch` : e.name));
    this.entries.clear();
    return out;
  }

  /** Reduces `entries` across processes and files each value under its logger key and its plain name. */
  private async split(entries: Entry[], valueOf: (e: Entry) => number, keyOf: (e: Entry) => string): Promise<MetricsSplit> {
    const out: MetricsSplit = { logger: {}, progBar: {}, callback: {} };
    const synced = await this.syncValues(entries, valueOf);
    for (const e of entries) {
      const v = synced[e.name]!;
      const key = keyOf(e);
      if (e.logger) out.logger[key] = v;
      if (e.progBar) out.progBar[key] = v;
      out.callback[key] = v;
      out.callback[e.name] = v;
    }
    return out;
  }

  /** Forgets everything (start of a loop). */
  reset(): void {
    this.entries.clear();
  }

  private async syncValues(entries: Entry[], valueOf: (e: Entry) => number): Promise<Record<string, number>> {
    const values: Record<string, number> = {};
    const toSync: Record<string, number> = {};
    const ops: Record<string, 'mean' | 'sum' | 'max' | 'min'> = {};
    for (const e of entries) {
      values[e.name] = valueOf(e);
      if (e.syncDist) {
        toSync[e.name] = values[e.name]!;
        ops[e.name] = e.reduceFx;
      }
    }
    if (Object.keys(toSync).length) Object.assign(values, await this.reducer(toSync, ops));
    return values;
  }
}

function reduceEntry(e: Entry): number {
  switch (e.reduceFx) {
    case 'sum':
      return e.sum;
    case 'max':
      return e.max;
    case 'min':
      return e.min;
    default:
      return e.sum / e.weight;
  }
}
