import type { Tensor } from './tf.js';
import type { Parameter } from './nn/module.js';

/** What the Trainer needs of an optimizer (core/optim's classes implement it). */
export interface OptimizerLike {
  readonly paramGroups: ReadonlyArray<{ params: Parameter[]; lr: number }>;
  step(): void;
  zeroGrad(): void;
  stateDict(): { tensors: Record<string, Tensor>; json: unknown };
  loadStateDict(state: { tensors: Record<string, Tensor>; json: unknown }): void;
}

/** What the Trainer needs of an LR scheduler. */
export interface LRSchedulerLike {
  step(): void;
  getLastLr(): number[];
  stateDict(): object;
  loadStateDict(state: object): void;
}

/** Lightning's lr_scheduler_config. */
export interface LRSchedulerConfig {
  scheduler: LRSchedulerLike;
  /** 'step' steps the schedule after every optimizer step, 'epoch' after every epoch (default). */
  interval?: 'step' | 'epoch';
  /** Step every `frequency` intervals (default 1). */
  frequency?: number;
  /** Name shown by LearningRateMonitor (default `lr-<OptimizerClass>`). */
  name?: string;
}

/** What `configureOptimizers` may return, as in Lightning. */
export type OptimizerConfig =
  | OptimizerLike
  | { optimizer: OptimizerLike; lrScheduler?: LRSchedulerLike | LRSchedulerConfig }
  | OptimizerLike[]
  | Array<{ optimizer: OptimizerLike; lrScheduler?: LRSchedulerLike | LRSchedulerConfig }>
  | [OptimizerLike[], Array<LRSchedulerLike | LRSchedulerConfig>];

/** What a training step returns: the loss, a dict with `loss`, or nothing (skip the batch). */
export type TrainingStepOutput = Tensor | { loss: Tensor; [key: string]: unknown } | null | undefined | void;

/** Normalised optimizers and schedulers. */
export interface OptimizersAndSchedulers {
  optimizers: OptimizerLike[];
  schedulers: Array<Required<Omit<LRSchedulerConfig, 'name'>> & { name: string | null; optimizerIndex: number }>;
}

function isOptimizer(x: unknown): x is OptimizerLike {
  return typeof x === 'object' && x !== null && 'paramGroups' in x && typeof (x as OptimizerLike).step === 'function';
}

function toSchedulerConfig(s: LRSchedulerLike | LRSchedulerConfig): LRSchedulerConfig {
  return 'scheduler' in s ? s : { scheduler: s };
}

/** Normalises every form `configureOptimizers` may return. */
export function normalizeOptimizerConfig(cfg: OptimizerConfig | null | undefined): OptimizersAndSchedulers {
  const out: OptimizersAndSchedulers = { optimizers: [], schedulers: [] };
  const addScheduler = (s: LRSchedulerLike | LRSchedulerConfig, optimizerIndex: number): void => {
    const c = toSchedulerConfig(s);
    const interval = c.interval ?? 'epoch';
    if (interval !== 'step' && interval !== 'epoch') {
      throw new Error(`lrScheduler \`interval\` must be 'step' or 'epoch', got ${JSON.stringify(interval)}`);
    }
    out.schedulers.push({ scheduler: c.scheduler, interval, frequency: c.frequency ?? 1, name: c.name ?? null, optimizerIndex });
  };
  if (cfg == null) return out;
  if (isOptimizer(cfg)) {
    out.optimizers.push(cfg);
  } else if (Array.isArray(cfg)) {
    if (cfg.length === 2 && Array.isArray(cfg[0]) && Array.isArray(cfg[1])) {
      const [opts, scheds] = cfg as [OptimizerLike[], Array<LRSchedulerLike | LRSchedulerConfig>];
      out.optimizers.push(...opts);
      scheds.forEach((s, i) => addScheduler(s, Math.min(i, opts.length - 1)));
    } else {
      for (const item of cfg as Array<OptimizerLike | { optimizer: OptimizerLike; lrScheduler?: LRSchedulerLike | LRSchedulerConfig }>) {
        if (isOptimizer(item)) out.optimizers.push(item);
        else {
          out.optimizers.push(item.optimizer);
          if (item.lrScheduler) addScheduler(item.lrScheduler, out.optimizers.length - 1);
        }
      }
    }
  } else {
    out.optimizers.push(cfg.optimizer);
    if (cfg.lrScheduler) addScheduler(cfg.lrScheduler, 0);
  }
  return out;
}
