import { LightningDataModule, type Stage } from '../core/datamodule.js';
import { MisconfigurationError, showValue } from '../core/errors.js';
import { Generator } from '../core/random.js';
import { register } from '../core/registry.js';
import { DecodePool } from './decodePool.js';
import { scanImageTextFolder, type FolderScanReport, type ImageTextPair } from './folderDataset.js';
import { ImageTextLoader, type EpochState } from './imageTextLoader.js';
import { checkShard } from './sampler.js';
import { clipEvalTransform, randomResizedCrop } from './transforms.js';
import type { CaptionTokenizer, ImageTextBatch } from './types.js';

/** Options of {@link ImageTextFolderDataModule} (train-CLIP's TextImageDataModule flags). */
export interface ImageTextFolderOptions {
  /** `--folder`: images and same-stem `.txt` caption files, in any subfolders. */
  folder: string;
  /** `--val_folder`: a separate validation folder (excludes `valFraction`). */
  valFolder?: string;
  /** `--val_fraction`: fraction of `folder` held out for validation, split with `seed`. */
  valFraction?: number;
  /** `--batch_size`: samples per batch on each rank. */
  batchSize: number;
  /** `--num_workers`: decode worker threads (0: decode on the main thread). Default 0. */
  numWorkers?: number;
  /** `--image_size`: output side in pixels. Default 224. */
  imageSize?: number;
  /** `--resize_ratio`: smallest crop area fraction of RandomResizedCrop. Default 0.75. */
  resizeRatio?: number;
  /** Crop aspect ratio range of RandomResizedCrop. Default [1, 1] (square crops). */
  cropRatio?: [number, number];
  /** Reshuffle the training set every epoch. Default true. */
  shuffle?: boolean;
  /** Drop the last incomplete training batch. Default true. */
  dropLast?: boolean;
  /** Seeds the shuffle (with the epoch), caption choice, crops and the validation split. Default 0. */
  seed?: number;
  tokenizer: CaptionTokenizer;
  /** Token context length. Default: the tokenizer's. */
  contextLength?: number;
  /** This process's rank and the number of processes, for DDP sharding. Default 0 of 1. */
  rank?: number;
  worldSize?: number;
  /** Batches decoded ahead with workers. Default 2. */
  prefetchBatches?: number;
  /** Where summaries and warnings go. Default console.log / console.warn; null silences. */
  log?: ((line: string) => void) | null;
}

/** Corrupt-image warnings printed per datamodule before only the epoch summaries remain. */
const MAX_SKIP_WARNINGS = 20;

function positiveInt(value: unknown, flag: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new MisconfigurationError(`\`${flag}\` must be a positive integer, got ${showValue(value)}.`);
  }
  return value;
}

function nonNegativeInt(value: unknown, flag: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new MisconfigurationError(`\`${flag}\` must be a non-negative integer, got ${showValue(value)}.`);
  }
  return value;
}

function bool(value: unknown, flag: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new MisconfigurationError(`\`${flag}\` must be true or false, got ${showValue(value)}.`);
  return value;
}

/**
 * train-CLIP's `TextImageDataModule`: a folder of images paired with same-stem caption files
 * (see {@link scanImageTextFolder}). Training batches use RandomResizedCrop and a caption
 * drawn at random per sample and epoch; validation uses CLIP's eval transform, no shuffle,
 * keeps the last short batch and always draws the same captions (epoch 0's), so validation
 * losses are comparable across epochs. Batches are {@link ImageTextBatch}es.
 *
 * Randomness: everything derives from `seed` through core/random's Generator — the validation
 * split from `Generator(seed)`, each epoch's order and per-sample draws from
 * `Generator(seed + epoch)` — so runs, ranks and worker counts agree.
 */
export class ImageTextFolderDataModule extends LightningDataModule<ImageTextBatch> {
  /** Samples skipped so far because their image could not be decoded. */
  skippedCorrupt = 0;
  /** Scan reports of the training and validation folders (after `setup`). */
  reports: { train?: FolderScanReport; val?: FolderScanReport } = {};
  /** Pairs in the training and validation splits (after `setup`). */
  trainPairs: ImageTextPair[] = [];
  valPairs: ImageTextPair[] = [];

  private readonly opts: Required<Omit<ImageTextFolderOptions, 'valFolder' | 'valFraction' | 'log'>> & {
    valFolder: string | undefined;
    valFraction: number;
  };
  private readonly log: ((line: string) => void) | null;
  private readonly warn: ((line: string) => void) | null;
  private readonly trainState: EpochState;
  private pool: DecodePool | null = null;
  private setupDone = false;
  private warnings = 0;

  constructor(options: ImageTextFolderOptions) {
    super();
    if (!options || typeof options !== 'object') throw new MisconfigurationError('`--folder` is required: the folder of images and captions.');
    if (typeof options.folder !== 'string' || options.folder.length === 0) {
      throw new MisconfigurationError(`\`--folder\` must be a path to a folder of images and .txt captions, got ${showValue(options.folder)}.`);
    }
    const tok = options.tokenizer;
    if (!tok || typeof tok.tokenize !== 'function') {
      throw new MisconfigurationError('`tokenizer` is required: an object with tokenize(texts, contextLength) and contextLength.');
    }
    if (options.valFolder !== undefined && options.valFraction !== undefined) {
      throw new MisconfigurationError('`--val_folder` and `--val_fraction` exclude each other: give one way of getting validation data.');
    }
    const valFraction = options.valFraction ?? 0;
    if (typeof valFraction !== 'number' || !(valFraction >= 0 && valFraction < 1)) {
      throw new MisconfigurationError(`\`--val_fraction\` must be a number in [0, 1), got ${showValue(options.valFraction)}.`);
    }
    const resizeRatio = options.resizeRatio ?? 0.75;
    if (typeof resizeRatio !== 'number' || !(resizeRatio > 0 && resizeRatio <= 1)) {
      throw new MisconfigurationError(`\`--resize_ratio\` must be a number in (0, 1], got ${showValue(options.resizeRatio)}.`);
    }
    const rank = nonNegativeInt(options.rank ?? 0, 'rank');
    const worldSize = positiveInt(options.worldSize ?? 1, 'worldSize');
    checkShard(rank, worldSize);
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new MisconfigurationError(`\`--seed\` must be an integer, got ${showValue(seed)}.`);
    this.opts = {
      folder: options.folder,
      valFolder: options.valFolder,
      valFraction,
      batchSize: positiveInt(options.batchSize, '--batch_size'),
      numWorkers: nonNegativeInt(options.numWorkers ?? 0, '--num_workers'),
      imageSize: positiveInt(options.imageSize ?? 224, '--image_size'),
      resizeRatio,
      cropRatio: options.cropRatio ?? [1, 1],
      shuffle: bool(options.shuffle, '--shuffle', true),
      dropLast: bool(options.dropLast, '--drop_last', true),
      seed,
      tokenizer: tok,
      contextLength: positiveInt(options.contextLength ?? tok.contextLength, '--context_length'),
      rank,
      worldSize,
      prefetchBatches: nonNegativeInt(options.prefetchBatches ?? 2, 'prefetchBatches'),
    };
    // Validates the crop options now rather than at the first batch.
    randomResizedCrop(this.opts.imageSize, { scale: [resizeRatio, 1], ratio: this.opts.cropRatio }, new Generator(0));
    this.log = options.log === undefined ? console.log : options.log;
    this.warn = options.log === undefined ? console.warn : options.log;
    this.trainState = { epoch: 0, generatorState: new Generator(seed).getState() };
    // The tokenizer is an object, not a hyperparameter; the model logs its own.
    const hp: Record<string, unknown> = { ...this.opts };
    delete hp.tokenizer;
    this.hparams = hp;
  }

  /** Scans the folder(s) and splits; idempotent. */
  override async setup(_stage: Stage): Promise<void> {
    if (this.setupDone) return;
    const o = this.opts;
    const train = await scanImageTextFolder(o.folder, { flag: '--folder', log: this.log });
    this.reports.train = train.report;
    if (o.valFolder !== undefined) {
      const val = await scanImageTextFolder(o.valFolder, { flag: '--val_folder', log: this.log });
      this.reports.val = val.report;
      this.trainPairs = train.pairs;
      this.valPairs = val.pairs;
    } else if (o.valFraction > 0) {
      const n = train.pairs.length;
      const nVal = Math.max(1, Math.round(n * o.valFraction));
      if (nVal >= n) {
        throw new MisconfigurationError(`\`--val_fraction\` ${o.valFraction} of ${n} pairs leaves no training data.`);
      }
      // A fixed stream of its own: the split must not move when the epoch or worker count changes.
      const perm = new Generator(o.seed).permutation(n);
      const isVal = new Uint8Array(n);
      for (const i of perm.slice(0, nVal)) isVal[i] = 1;
      this.trainPairs = train.pairs.filter((_, i) => !isVal[i]);
      this.valPairs = train.pairs.filter((_, i) => isVal[i]);
      this.log?.(`--val_fraction ${o.valFraction}: ${this.trainPairs.length} training, ${this.valPairs.length} validation pairs`);
    } else {
      this.trainPairs = train.pairs;
    }
    const perRank = Math.ceil(this.trainPairs.length / o.worldSize);
    if (o.dropLast && perRank < o.batchSize) {
      throw new MisconfigurationError(
        `\`--batch_size\` ${o.batchSize} is larger than the ${perRank} training samples per rank, so dropLast leaves no batch: lower it or set dropLast false.`,
      );
    }
    this.setupDone = true;
  }

  /** Shuffled (per epoch), RandomResizedCrop, dropLast; call `setEpoch` on it each epoch. */
  override trainDataloader(): ImageTextLoader {
    this.requireSetup();
    const o = this.opts;
    const crop = { scale: [o.resizeRatio, 1] as [number, number], ratio: o.cropRatio };
    return this.loader(this.trainPairs, o.shuffle, o.dropLast, this.trainState, (rng) => randomResizedCrop(o.imageSize, crop, rng).plan());
  }

  /** Eval transform, folder order, keeps the last short batch; null without validation data. */
  override valDataloader(): ImageTextLoader | null {
    this.requireSetup();
    if (this.valPairs.length === 0) return null;
    const evalTransform = clipEvalTransform(this.opts.imageSize);
    const state: EpochState = { epoch: 0, generatorState: [], frozen: true };
    return this.loader(this.valPairs, false, false, state, () => evalTransform.plan());
  }

  /** Closes the decode workers (they are re-created if a loader is iterated again). */
  override async teardown(_stage: Stage): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  /** The training epoch, generator state and skip count (saved in checkpoints). */
  override stateDict(): Record<string, unknown> {
    return { epoch: this.trainState.epoch, generator: [...this.trainState.generatorState], seed: this.opts.seed, skippedCorrupt: this.skippedCorrupt };
  }

  /** Restores what `stateDict` saved; the next iteration replays the saved epoch's order and draws. */
  override loadStateDict(state: Record<string, unknown>): void {
    const { epoch, generator, skippedCorrupt } = state;
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new Error(`folder datamodule state: bad epoch ${showValue(epoch)}`);
    if (!Array.isArray(generator) || generator.length !== 4 || !generator.every((w) => typeof w === 'number')) {
      throw new Error(`folder datamodule state: bad generator state ${showValue(generator)}`);
    }
    this.trainState.epoch = epoch;
    this.trainState.generatorState = generator.map((w: number) => w >>> 0);
    if (typeof skippedCorrupt === 'number') this.skippedCorrupt = skippedCorrupt;
  }

  private requireSetup(): void {
    if (!this.setupDone) throw new Error('ImageTextFolderDataModule: call `await setup(stage)` before requesting dataloaders');
  }

  private loader(
    samples: ImageTextPair[],
    shuffle: boolean,
    dropLast: boolean,
    state: EpochState,
    plan: ConstructorParameters<typeof ImageTextLoader>[0]['plan'],
  ): ImageTextLoader {
    const o = this.opts;
    return new ImageTextLoader({
      samples,
      batchSize: o.batchSize,
      shuffle,
      dropLast,
      seed: o.seed,
      rank: o.rank,
      worldSize: o.worldSize,
      imageSize: o.imageSize,
      plan,
      tokenizer: o.tokenizer,
      contextLength: o.contextLength,
      pool: () => (this.pool ??= new DecodePool(o.numWorkers)),
      prefetchBatches: o.prefetchBatches,
      state,
      onSkip: (path, error) => {
        this.skippedCorrupt++;
        if (this.warnings < MAX_SKIP_WARNINGS) this.warn?.(`skipping corrupt image ${path}: ${error}`);
        else if (this.warnings === MAX_SKIP_WARNINGS) this.warn?.('(further corrupt-image warnings suppressed; counts follow at epoch end)');
        this.warnings++;
      },
      onEpochEnd: (epoch, skipped) => {
        if (skipped > 0) this.log?.(`epoch ${epoch}: skipped ${skipped} corrupt images (${this.skippedCorrupt} in total)`);
      },
    });
  }
}

/** camelCase keys from the CLI's snake_case (`batch_size` → `batchSize`). */
function camelKeys(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

register<ImageTextFolderDataModule>(
  'datamodule',
  'folder',
  (options) => new ImageTextFolderDataModule(camelKeys(options ?? {}) as unknown as ImageTextFolderOptions),
  { description: 'images paired with same-stem .txt caption files anywhere under --folder (train-CLIP)' },
);
