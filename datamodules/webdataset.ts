import { LightningDataModule, type Stage } from '../core/datamodule.js';
import { MisconfigurationError, showValue } from '../core/errors.js';
import { Generator } from '../core/random.js';
import { register } from '../core/registry.js';
import { checkShard } from '../core/sampler.js';
import { DecodePool } from './decodePool.js';
import type { StreamBatch } from './stream/batcher.js';
import { expandShardSources } from './stream/shardUrls.js';
import { ShardedLoader, type ShardSource } from './stream/shardedLoader.js';
import { datasetSize } from './stream/sizes.js';
import { SkipLog } from './stream/skips.js';
import { shardSamples } from './stream/wdsSamples.js';
import { DEFAULT_WDS_KEYS, parseKeyList, wdsItem, type WdsKeys } from './stream/wdsItems.js';
import { clipEvalTransform, randomResizedCrop } from './transforms.js';
import type { CaptionTokenizer } from './types.js';

/** Options of {@link WebDatasetDataModule} (open_clip's flags, camelCased). */
export interface WebDatasetOptions {
  /** `--train_data`: shard URLs (`{00000..00099}.tar`, `::` lists, `${X}`, pipe:, http(s), s3://). */
  trainData?: string;
  /** `--val_data`: validation shards (no shuffle, split by worker; partial batches kept). */
  valData?: string;
  /** `--dataset_resampled`: draw shards with replacement per worker. */
  datasetResampled?: boolean;
  /** `--train_data_upsampling_factors`: one weight per `::` source (needs resampling). */
  trainDataUpsamplingFactors?: string;
  /** `--train_num_samples`: samples per epoch (else sizes.json / __len__). */
  trainNumSamples?: number;
  /** `--val_num_samples`: validation samples (else sizes.json / __len__; else one pass). */
  valNumSamples?: number;
  /** `--image_key` (`jpg;png;jpeg;webp`), `--text_key` (`txt`), `--json_text_key`. */
  imageKey?: string;
  textKey?: string;
  jsonTextKey?: string;
  batchSize: number;
  /** `--num_workers`: loader workers (each reads its own shards) and decode threads. Default 1 logical worker, decoding on the main thread. */
  numWorkers?: number;
  imageSize?: number;
  /** Smallest RandomResizedCrop area fraction. Default 0.9 (open_clip's train transform). */
  resizeRatio?: number;
  seed?: number;
  tokenizer: CaptionTokenizer;
  contextLength?: number;
  rank?: number;
  worldSize?: number;
  prefetchBatches?: number;
  /** Sample shuffle buffer [size, initial] (open_clip: 5000, 1000; OPENCLIP_WDS_* style override). */
  sampleShuffle?: [number, number];
  /** `--s3_endpoint` for s3:// shards (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL). */
  s3Endpoint?: string;
  /** Keep each row's encoded image in the batch (`lightclip data show`). */
  keepEncoded?: boolean;
  log?: ((line: string) => void) | null;
}

function intOpt(v: unknown, flag: string, min: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new MisconfigurationError(`\`${flag}\` must be an integer >= ${min}, got ${showValue(v)}.`);
  return v;
}

/**
 * WebDataset tar shards with open_clip's semantics (see {@link ShardedLoader} for the
 * order, splitting and epoch length, and wdsSamples.ts for key grouping). Registered as
 * `--datamodule webdataset`; train.ts builds it from `--train_data` (`--dataset_type webdataset`).
 */
export class WebDatasetDataModule extends LightningDataModule<StreamBatch> {
  readonly skips: SkipLog;
  private readonly o: WebDatasetOptions & { batchSize: number; numWorkers: number; imageSize: number; seed: number; contextLength: number; rank: number; worldSize: number };
  private readonly keys: WdsKeys;
  private readonly trainState = { epoch: 0 };
  private train: ShardSource | null = null;
  private val: ShardSource | null = null;
  private trainSamples: number | undefined;
  private valSamples: number | undefined;
  private pool: DecodePool | null = null;
  private readonly log: ((line: string) => void) | null;

  constructor(options: WebDatasetOptions) {
    super();
    if (!options.trainData && !options.valData) throw new MisconfigurationError('`--train_data` (or `--val_data`) is required: WebDataset shard URLs such as "/data/{00000..00099}.tar".');
    if (!options.tokenizer || typeof options.tokenizer.tokenize !== 'function') throw new MisconfigurationError('`tokenizer` is required.');
    const rank = intOpt(options.rank, 'rank', 0, 0);
    const worldSize = intOpt(options.worldSize, 'worldSize', 1, 1);
    checkShard(rank, worldSize);
    this.o = {
      ...options,
      batchSize: intOpt(options.batchSize, '--batch_size', 1),
      numWorkers: intOpt(options.numWorkers, '--num_workers', 0, 0),
      imageSize: intOpt(options.imageSize, '--image_size', 1, 224),
      seed: intOpt(options.seed, '--seed', 0, 0),
      contextLength: intOpt(options.contextLength, '--context_length', 1, options.tokenizer.contextLength),
      rank,
      worldSize,
    };
    if (options.trainNumSamples !== undefined) intOpt(options.trainNumSamples, '--train_num_samples', 1);
    this.keys = {
      image: options.imageKey !== undefined ? parseKeyList(options.imageKey) : DEFAULT_WDS_KEYS.image,
      text: options.textKey !== undefined ? options.textKey.toLowerCase() : options.jsonTextKey !== undefined ? 'json' : DEFAULT_WDS_KEYS.text,
      jsonText: options.jsonTextKey,
    };
    if (this.keys.image.length === 0) throw new MisconfigurationError(`\`--image_key\` must list image extensions such as "jpg;png", got ${showValue(options.imageKey)}.`);
    this.log = options.log === undefined ? console.log : options.log;
    this.skips = new SkipLog(options.log === undefined ? console.warn : options.log, this.log);
    const hp: Record<string, unknown> = { ...options };
    delete hp.tokenizer;
    delete hp.log;
    this.hparams = hp;
  }

  override setup(_stage: Stage): void {
    if (this.train || this.val) return;
    const o = this.o;
    if (o.trainData) {
      const sources = expandShardSources(o.trainData, '--train_data');
      let weights: number[] | undefined;
      if (o.trainDataUpsamplingFactors !== undefined) {
        if (!o.datasetResampled) throw new MisconfigurationError('`--train_data_upsampling_factors` needs `--dataset_resampled` (weights only apply when sampling with replacement).');
        const f = String(o.trainDataUpsamplingFactors).split('::').map(Number);
        if (f.length !== sources.length || f.some((x) => !(x >= 0))) {
          throw new MisconfigurationError(`\`--train_data_upsampling_factors\` must give one non-negative number per \`::\` source of --train_data (${sources.length}), got ${showValue(o.trainDataUpsamplingFactors)}.`);
        }
        weights = sources.flatMap((s, i) => s.map(() => f[i]!));
      }
      this.train = this.source(sources.flat(), '--train_data', weights);
      this.trainSamples = o.trainNumSamples ?? datasetSize(this.train.shards)?.total;
      if (this.trainSamples === undefined) {
        throw new MisconfigurationError(
          '`--train_num_samples` is required: the training epoch length cannot be read from the shards (no sizes.json or __len__ beside them; `lightclip wds write` writes sizes.json).',
        );
      }
      this.log?.(`--train_data: ${this.train.shards.length} shards, ${this.trainSamples} samples per epoch${o.datasetResampled ? ' (resampled)' : ''}`);
    }
    if (o.valData) {
      this.val = this.source(expandShardSources(o.valData, '--val_data').flat(), '--val_data');
      this.valSamples = o.valNumSamples ?? datasetSize(this.val.shards)?.total;
    }
  }

  private source(shards: string[], flag: string, weights?: number[]): ShardSource {
    const keys = this.keys;
    const s3 = { endpoint: this.o.s3Endpoint };
    return {
      shards,
      weights,
      flag,
      async *read(url: string) {
        for await (const s of shardSamples(url, { s3 })) yield wdsItem(s, keys);
      },
    };
  }

  override trainDataloader(): ShardedLoader {
    if (!this.train) throw new MisconfigurationError('`--train_data` is required for training.');
    const o = this.o;
    const scale: [number, number] = [o.resizeRatio ?? 0.9, 1];
    randomResizedCrop(o.imageSize, { scale }, new Generator(0));
    return this.loader(this.train, true, this.trainSamples, this.trainState, (rng) => randomResizedCrop(o.imageSize, { scale }, rng).plan());
  }

  override valDataloader(): ShardedLoader | null {
    if (!this.val) return null;
    const t = clipEvalTransform(this.o.imageSize);
    return this.loader(this.val, false, this.valSamples, { epoch: 0, frozen: true }, () => t.plan());
  }

  private loader(source: ShardSource, training: boolean, numSamples: number | undefined, state: { epoch: number; frozen?: boolean }, plan: (rng: Generator) => ReturnType<ReturnType<typeof clipEvalTransform>['plan']>): ShardedLoader {
    const o = this.o;
    return new ShardedLoader({
      source,
      training,
      resampled: training && o.datasetResampled === true,
      numSamples: training ? numSamples : undefined,
      workers: Math.max(1, o.numWorkers),
      seed: o.seed,
      rank: o.rank,
      worldSize: o.worldSize,
      sampleShuffle: o.sampleShuffle,
      batchSize: o.batchSize,
      imageSize: o.imageSize,
      plan,
      tokenizer: o.tokenizer,
      contextLength: o.contextLength,
      pool: () => (this.pool ??= new DecodePool(o.numWorkers)),
      skips: this.skips,
      keepEncoded: o.keepEncoded,
      prefetchBatches: o.prefetchBatches ?? 2,
      state,
    });
  }

  override async teardown(_stage: Stage): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  override stateDict(): Record<string, unknown> {
    return { epoch: this.trainState.epoch, seed: this.o.seed, skipped: { ...this.skips.total } };
  }

  override loadStateDict(state: Record<string, unknown>): void {
    const epoch = state.epoch;
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new Error(`webdataset datamodule state: bad epoch ${showValue(epoch)}`);
    this.trainState.epoch = epoch;
    const skipped = state.skipped as Record<string, number> | undefined;
    if (skipped && typeof skipped === 'object') for (const k of ['corrupt', 'incomplete', 'shard'] as const) if (typeof skipped[k] === 'number') this.skips.total[k] = skipped[k];
  }
}

/** camelCase keys from the CLI's snake_case. */
export function camelKeys(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

register<WebDatasetDataModule>('datamodule', 'webdataset', (options) => new WebDatasetDataModule(camelKeys(options ?? {}) as unknown as WebDatasetOptions), {
  description: 'WebDataset tar shards with open_clip semantics (--train_data "/data/{00000..00099}.tar")',
});
