import { LightningDataModule, type Stage } from '../../core/datamodule.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Generator } from '../../core/random.js';
import { checkShard } from '../../core/sampler.js';
import { DecodePool } from '../decodePool.js';
import type { TransformPlan } from '../decodeKernel.js';
import { clipEvalTransform, randomResizedCrop } from '../transforms.js';
import type { CaptionTokenizer } from '../types.js';
import type { StreamBatch } from './batcher.js';
import { IndexedLoader, type IndexedSource } from './indexedLoader.js';
import { SkipLog } from './skips.js';

/** Options every map-style streamed datamodule (CSV, CC3M/CC12M, YFCC15M, CoreNet) takes. */
export interface IndexedDataOptions {
  batchSize: number;
  numWorkers?: number;
  imageSize?: number;
  /** Smallest RandomResizedCrop area fraction (open_clip 0.9; clip-rocket/SLIP 0.5). */
  resizeRatio?: number;
  seed?: number;
  tokenizer: CaptionTokenizer;
  contextLength?: number;
  rank?: number;
  worldSize?: number;
  prefetchBatches?: number;
  keepEncoded?: boolean;
  log?: ((line: string) => void) | null;
}

function int(v: unknown, flag: string, min: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new MisconfigurationError(`\`${flag}\` must be an integer >= ${min}, got ${showValue(v)}.`);
  return v;
}

/**
 * The datamodule shape shared by the map-style formats: subclasses open their sources in
 * `openSources` (called once by `setup`); training shuffles per epoch (seed + epoch), uses
 * RandomResizedCrop and drops the last partial batch; validation keeps file order, CLIP's
 * eval transform and the partial batch. State saved in checkpoints: epoch and skip counts.
 */
export abstract class IndexedDataModule extends LightningDataModule<StreamBatch> {
  readonly skips: SkipLog;
  protected readonly base: Required<Omit<IndexedDataOptions, 'log' | 'keepEncoded' | 'resizeRatio'>> & { keepEncoded: boolean; resizeRatio: number };
  protected readonly log: ((line: string) => void) | null;
  protected train: IndexedSource | null = null;
  protected val: IndexedSource | null = null;
  private readonly trainState = { epoch: 0 };
  private pool: DecodePool | null = null;
  private opened = false;

  constructor(options: IndexedDataOptions, defaultResizeRatio: number) {
    super();
    if (!options.tokenizer || typeof options.tokenizer.tokenize !== 'function') throw new MisconfigurationError('`tokenizer` is required.');
    const rank = int(options.rank, 'rank', 0, 0);
    const worldSize = int(options.worldSize, 'worldSize', 1, 1);
    checkShard(rank, worldSize);
    this.base = {
      batchSize: int(options.batchSize, '--batch_size', 1, Number.NaN),
      numWorkers: int(options.numWorkers, '--num_workers', 0, 0),
      imageSize: int(options.imageSize, '--image_size', 1, 224),
      resizeRatio: options.resizeRatio ?? defaultResizeRatio,
      seed: int(options.seed, '--seed', 0, 0),
      tokenizer: options.tokenizer,
      contextLength: int(options.contextLength, '--context_length', 1, options.tokenizer.contextLength),
      rank,
      worldSize,
      prefetchBatches: int(options.prefetchBatches, 'prefetchBatches', 0, 2),
      keepEncoded: options.keepEncoded === true,
    };
    if (!Number.isInteger(this.base.batchSize)) throw new MisconfigurationError('`--batch_size` is required.');
    randomResizedCrop(this.base.imageSize, { scale: [this.base.resizeRatio, 1] }, new Generator(0));
    this.log = options.log === undefined ? console.log : options.log;
    this.skips = new SkipLog(options.log === undefined ? console.warn : options.log, this.log);
  }

  /** Opens the training and validation sources (either may stay null). */
  protected abstract openSources(): Promise<void>;

  override async setup(_stage: Stage): Promise<void> {
    if (this.opened) return;
    await this.openSources();
    this.opened = true;
    if (this.train) {
      const perRank = Math.ceil(this.train.size / this.base.worldSize);
      if (perRank < this.base.batchSize) {
        throw new MisconfigurationError(`\`--batch_size\` ${this.base.batchSize} is larger than the ${perRank} training samples per rank, so no full batch can be made.`);
      }
    }
  }

  override trainDataloader(): IndexedLoader {
    if (!this.opened) throw new Error(`${this.constructor.name}: call \`await setup(stage)\` before requesting dataloaders`);
    if (!this.train) throw new MisconfigurationError(`${this.constructor.name} has no training data.`);
    const b = this.base;
    const scale: [number, number] = [b.resizeRatio, 1];
    return this.loader(this.train, true, this.trainState, (rng) => randomResizedCrop(b.imageSize, { scale }, rng).plan());
  }

  override valDataloader(): IndexedLoader | null {
    if (!this.val) return null;
    const t = clipEvalTransform(this.base.imageSize);
    return this.loader(this.val, false, { epoch: 0, frozen: true }, () => t.plan());
  }

  private loader(source: IndexedSource, training: boolean, state: { epoch: number; frozen?: boolean }, plan: (rng: Generator) => TransformPlan): IndexedLoader {
    const b = this.base;
    return new IndexedLoader({
      source,
      shuffle: training,
      dropLast: training,
      seed: b.seed,
      rank: b.rank,
      worldSize: b.worldSize,
      prefetchBatches: b.prefetchBatches,
      state,
      batchSize: b.batchSize,
      imageSize: b.imageSize,
      plan,
      tokenizer: b.tokenizer,
      contextLength: b.contextLength,
      pool: () => (this.pool ??= new DecodePool(b.numWorkers)),
      skips: this.skips,
      keepEncoded: b.keepEncoded,
    });
  }

  override async teardown(_stage: Stage): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  override stateDict(): Record<string, unknown> {
    return { epoch: this.trainState.epoch, seed: this.base.seed, skipped: { ...this.skips.total } };
  }

  override loadStateDict(state: Record<string, unknown>): void {
    const epoch = state.epoch;
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new Error(`${this.constructor.name} state: bad epoch ${showValue(epoch)}`);
    this.trainState.epoch = epoch;
    const skipped = state.skipped as Record<string, number> | undefined;
    if (skipped && typeof skipped === 'object') for (const k of ['corrupt', 'incomplete', 'shard'] as const) if (typeof skipped[k] === 'number') this.skips.total[k] = skipped[k];
  }
}
