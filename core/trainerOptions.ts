import * as path from 'node:path';
import type { Callback } from './callback.js';
import { MisconfigurationError, showValue } from './errors.js';
import type { Logger } from './logger.js';
import { checkLimit } from './loops/limits.js';
import type { Strategy } from './strategy.js';

/**
 * Options of the {@link Trainer}, named as Lightning's (camelCase). Batch limits and
 * `valCheckInterval` follow one rule: `null` = all/once per epoch, a number in (0, 1) =
 * a fraction of the epoch, an integer ≥ 1 = a count of batches.
 */
export interface TrainerOptions {
  /** Stop after this many epochs (default 1000 when `maxSteps` is unset, else unlimited: -1). */
  maxEpochs?: number;
  /** Train at least this many epochs before EarlyStopping may stop (default 0). */
  minEpochs?: number;
  /** Stop after this many optimizer steps (-1 = unlimited, the default). */
  maxSteps?: number;
  /** Sum gradients over k batches before each optimizer step (default 1). */
  accumulateGradBatches?: number;
  /** Clip gradients to this global norm or value (default none). */
  gradientClipVal?: number | null;
  /** 'norm' (global L2 norm, default) or 'value'. */
  gradientClipAlgorithm?: 'norm' | 'value';
  /** When to validate within an epoch (default null: once, at the end of the epoch). */
  valCheckInterval?: number | null;
  /** Validate every n epochs (default 1). */
  checkValEveryNEpoch?: number;
  limitTrainBatches?: number | null;
  limitValBatches?: number | null;
  limitTestBatches?: number | null;
  limitPredictBatches?: number | null;
  /** Validation batches run before training to catch bugs early (default 2; -1 = all). */
  numSanityValSteps?: number;
  /** true or n: run n (1) batches of train/val/test, no loggers or checkpoints. */
  fastDevRun?: boolean | number;
  /** Send step metrics to the loggers every n optimizer steps (default 50). */
  logEveryNSteps?: number;
  /** Seed of lightclip's generator (initialisation, dropout, shuffling). */
  seed?: number | null;
  /** Reproducible kernels: sets TF_DETERMINISTIC_OPS/TF_CUDNN_DETERMINISTIC for tfjs-node(-gpu), warns without a seed (core/deterministic.ts). */
  deterministic?: boolean;
  /** Root of logs and checkpoints (default: the working directory). */
  defaultRootDir?: string;
  callbacks?: Callback[];
  /** true = TensorBoard (or CSV) under `defaultRootDir`, false = none, or logger instance(s). */
  logger?: boolean | Logger | Logger[];
  enableProgressBar?: boolean;
  enableCheckpointing?: boolean;
  /** 'auto' | 'single' | 'ddp' | a Strategy instance. */
  strategy?: string | Strategy;
  /** '32-true' only: tfjs has no float16/bfloat16 dtype. */
  precision?: string;
  /** 'auto' (best available backend), 'cpu' or 'gpu' (needs @tensorflow/tfjs-node-gpu). */
  accelerator?: 'auto' | 'cpu' | 'gpu';
}

type Resolved = Required<Omit<TrainerOptions, 'logger' | 'callbacks' | 'strategy' | 'seed' | 'fastDevRun'>> & {
  seed: number | null;
  fastDevRun: number;
};

/** Names and one-line descriptions, for `--help`. */
export const TrainerOptionsSchema: Record<string, string> = {
  maxEpochs: 'stop after this many epochs',
  maxSteps: 'stop after this many optimizer steps (-1: unlimited)',
  accumulateGradBatches: 'batches per optimizer step',
  gradientClipVal: 'gradient clipping threshold',
  gradientClipAlgorithm: "'norm' or 'value'",
  valCheckInterval: 'validate every fraction of an epoch or every n batches',
  checkValEveryNEpoch: 'validate every n epochs',
  numSanityValSteps: 'validation batches before training',
  fastDevRun: 'run n batches of everything, no logs or checkpoints',
  logEveryNSteps: 'logger interval in steps',
  seed: 'random seed',
};

function int(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new MisconfigurationError(`\`${name}\` must be an integer ≥ ${min}, got ${showValue(v)}.`);
  }
  return v;
}

/** Validates every option in one place (as Lightning's `__validate_init_configuration`). */
export function validateTrainerOptions(o: TrainerOptions): { resolved: Resolved } {
  const fastDevRun = o.fastDevRun === true ? 1 : o.fastDevRun === false || o.fastDevRun === undefined ? 0 : int('fastDevRun', o.fastDevRun, 0);
  const maxSteps = o.maxSteps === undefined ? -1 : int('maxSteps', o.maxSteps, -1);
  let maxEpochs = o.maxEpochs === undefined ? (maxSteps === -1 ? 1000 : -1) : int('maxEpochs', o.maxEpochs, -1);
  const clip = o.gradientClipVal ?? null;
  if (clip !== null && !(typeof clip === 'number' && clip >= 0)) {
    throw new MisconfigurationError(`\`gradientClipVal\` must be a number ≥ 0, got ${showValue(clip)}.`);
  }
  const algorithm = o.gradientClipAlgorithm ?? 'norm';
  if (algorithm !== 'norm' && algorithm !== 'value') {
    throw new MisconfigurationError(`\`gradientClipAlgorithm\` must be 'norm' or 'value', got ${showValue(algorithm)}.`);
  }
  const precision = o.precision ?? '32-true';
  if (!['32', '32-true'].includes(String(precision))) {
    throw new MisconfigurationError(
      `\`precision=${showValue(precision)}\` is not supported: tfjs has no float16/bfloat16 dtype, so lightclip trains in float32 ('32-true').`,
    );
  }
  for (const k of ['limitTrainBatches', 'limitValBatches', 'limitTestBatches', 'limitPredictBatches', 'valCheckInterval'] as const) {
    checkLimit(k, o[k] ?? null);
  }
  if (o.valCheckInterval === 0) throw new MisconfigurationError('`valCheckInterval` must be > 0 (use `limitValBatches: 0` to disable validation).');
  let limits = {
    limitTrainBatches: o.limitTrainBatches ?? null,
    limitValBatches: o.limitValBatches ?? null,
    limitTestBatches: o.limitTestBatches ?? null,
    limitPredictBatches: o.limitPredictBatches ?? null,
  };
  let numSanityValSteps = o.numSanityValSteps === undefined ? 2 : int('numSanityValSteps', o.numSanityValSteps, -1);
  let valCheckInterval = o.valCheckInterval ?? null;
  let logEveryNSteps = o.logEveryNSteps === undefined ? 50 : int('logEveryNSteps', o.logEveryNSteps, 1);
  let resolvedMaxSteps = maxSteps;
  if (fastDevRun > 0) {
    limits = { limitTrainBatches: fastDevRun, limitValBatches: fastDevRun, limitTestBatches: fastDevRun, limitPredictBatches: fastDevRun };
    maxEpochs = 1;
    resolvedMaxSteps = fastDevRun;
    numSanityValSteps = 0;
    valCheckInterval = null;
    logEveryNSteps = 1;
  }
  const seed = o.seed ?? null;
  if (seed !== null) int('seed', seed, 0);
  return {
    resolved: {
      maxEpochs,
      minEpochs: o.minEpochs === undefined ? 0 : int('minEpochs', o.minEpochs, 0),
      maxSteps: resolvedMaxSteps,
      accumulateGradBatches: o.accumulateGradBatches === undefined ? 1 : int('accumulateGradBatches', o.accumulateGradBatches, 1),
      gradientClipVal: clip,
      gradientClipAlgorithm: algorithm,
      valCheckInterval,
      checkValEveryNEpoch: o.checkValEveryNEpoch === undefined ? 1 : int('checkValEveryNEpoch', o.checkValEveryNEpoch, 1),
      ...limits,
      numSanityValSteps,
      fastDevRun,
      logEveryNSteps,
      seed,
      deterministic: o.deterministic ?? false,
      defaultRootDir: path.resolve(o.defaultRootDir ?? process.cwd()),
      enableProgressBar: o.enableProgressBar ?? true,
      enableCheckpointing: o.enableCheckpointing ?? true,
      precision: '32-true',
      accelerator: checkAccelerator(o.accelerator ?? 'auto'),
    },
  };
}

function checkAccelerator(a: unknown): 'auto' | 'cpu' | 'gpu' {
  if (a !== 'auto' && a !== 'cpu' && a !== 'gpu') throw new MisconfigurationError(`\`accelerator\` must be 'auto', 'cpu' or 'gpu', got ${showValue(a)}.`);
  return a;
}
