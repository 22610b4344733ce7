/**
 * `--datamodule deeplake` / train.ts `--path`: train-CLIP's Deep Lake fork
 * (`--path hub://genai360/laion-400M --token … --filter_NSFW`) and local or s3:// Deep Lake
 * datasets. Same transforms (RandomResizedCrop for training, CLIP's eval transform for
 * validation), tokenizer, DecodePool and skip accounting as the folder datamodule; the
 * streaming, sharding and resume logic is in stream.ts.
 */
import { LightningDataModule, type Stage } from '../../core/datamodule.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Generator } from '../../core/random.js';
import { register } from '../../core/registry.js';
import { checkShard } from '../../core/sampler.js';
import { DecodePool } from '../decodePool.js';
import { clipEvalTransform, randomResizedCrop } from '../transforms.js';
import type { CaptionTokenizer, ImageTextBatch } from '../types.js';
import { openStorage } from '../storage/index.js';
import { DeepLakeDataset, DeepLakeError, type DeepLakeTensor } from './dataset.js';
import { NSFW_QUERY, NSFW_WIDTH_QUERY, selectIndices } from './query.js';
import { DeepLakeLoader, type SkipReason, type StreamState } from './stream.js';

export interface DeepLakeDataModuleOptions {
  /** `--path`: a local dataset directory, `s3://bucket/prefix` or `hub://org/dataset`. */
  path: string;
  /** `--token`: Activeloop token (else ACTIVELOOP_TOKEN, else public). Never logged or saved. */
  token?: string;
  /** `--filter_NSFW`: keep `NSFW == 'UNLIKELY'` (and, with a WIDTH tensor, `WIDTH between 50 and 450`). */
  filterNsfw?: boolean;
  /** `--query`: a TQL filter (the fork's subset, see query.ts). Combined with filterNsfw by AND. */
  query?: string;
  /** `--image_key` (default URL, else image) and `--text_key` (default TEXT, else caption). */
  imageKey?: string;
  textKey?: string;
  branch?: string;
  commit?: string;
  /** `--val_path`: a separate validation dataset (same keys). */
  valPath?: string;
  batchSize: number;
  numWorkers?: number;
  imageSize?: number;
  resizeRatio?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  seed?: number;
  tokenizer: CaptionTokenizer;
  contextLength?: number;
  rank?: number;
  worldSize?: number;
  prefetchBatches?: number;
  /** Image chunks requested ahead of the one being read. Default 2. */
  prefetchChunks?: number;
  /** Samples in the shuffle buffer. Default 2048. */
  shuffleBuffer?: number;
  /** `--deeplake_cache_mb`: LRU budget for chunks, MB. Default 256. */
  cacheMb?: number;
  /** `--s3_endpoint` for plain s3:// paths. */
  s3Endpoint?: string;
  /** `--deeplake_agree`: accept a hub dataset's licence agreement when asked. */
  acceptAgreements?: boolean;
  log?: ((line: string) => void) | null;
}

const MAX_SKIP_WARNINGS = 20;

function int(v: unknown, flag: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new MisconfigurationError(`\`${flag}\` must be an integer >= ${min}, got ${showValue(v)}.`);
  return v;
}

export class DeepLakeDataModule extends LightningDataModule<ImageTextBatch> {
  /** Skipped samples by reason, over the run. */
  readonly skipped: Record<SkipReason, number> = { corrupt: 0, empty_image: 0, empty_caption: 0 };
  dataset: DeepLakeDataset | null = null;
  valDataset: DeepLakeDataset | null = null;
  /** Selected indices after filter/query (null: all). */
  selection: Uint32Array | null = null;
  private readonly o: Required<Omit<DeepLakeDataModuleOptions, 'token' | 'query' | 'branch' | 'commit' | 'valPath' | 'imageKey' | 'textKey' | 's3Endpoint' | 'log'>> &
    Pick<DeepLakeDataModuleOptions, 'query' | 'branch' | 'commit' | 'valPath' | 'imageKey' | 'textKey' | 's3Endpoint'>;
  /** Held in a closure-like private field, never in hparams/stateDict. */
  readonly #token: string | undefined;
  private readonly log: ((line: string) => void) | null;
  private readonly state: StreamState = { epoch: 0, position: 0 };
  private pool: DecodePool | null = null;
  private warnings = 0;
  private keys: { image: string; text: string } | null = null;

  constructor(options: DeepLakeDataModuleOptions) {
    super();
    if (!options || typeof options.path !== 'string' || !options.path) {
      throw new MisconfigurationError(`\`--path\` must be a Deep Lake dataset: a local directory, s3://bucket/prefix or hub://org/dataset, got ${showValue(options?.path)}.`);
    }
    const tok = options.tokenizer;
    if (!tok || typeof tok.tokenize !== 'function') throw new MisconfigurationError('`tokenizer` is required.');
    const rank = int(options.rank ?? 0, 'rank', 0);
    const worldSize = int(options.worldSize ?? 1, 'worldSize', 1);
    checkShard(rank, worldSize);
    const resizeRatio = options.resizeRatio ?? 0.75;
    if (typeof resizeRatio !== 'number' || !(resizeRatio > 0 && resizeRatio <= 1)) throw new MisconfigurationError(`\`--resize_ratio\` must be in (0, 1], got ${showValue(resizeRatio)}.`);
    if (options.cacheMb !== undefined && !(typeof options.cacheMb === 'number' && options.cacheMb > 0)) {
      throw new MisconfigurationError(`\`--deeplake_cache_mb\` must be a positive number of megabytes, got ${showValue(options.cacheMb)}.`);
    }
    if (options.branch !== undefined && options.commit !== undefined) throw new MisconfigurationError('`--branch` and `--commit` exclude each other.');
    this.o = {
      path: options.path,
      filterNsfw: options.filterNsfw ?? false,
      query: options.query,
      imageKey: options.imageKey,
      textKey: options.textKey,
      branch: options.branch,
      commit: options.commit,
      valPath: options.valPath,
      batchSize: int(options.batchSize, '--batch_size', 1),
      numWorkers: int(options.numWorkers ?? 0, '--num_workers', 0),
      imageSize: int(options.imageSize ?? 224, '--image_size', 1),
      resizeRatio,
      shuffle: options.shuffle ?? true,
      dropLast: options.dropLast ?? true,
      seed: int(options.seed ?? 0, '--seed', 0),
      tokenizer: tok,
      contextLength: int(options.contextLength ?? tok.contextLength, '--context_length', 1),
      rank,
      worldSize,
      prefetchBatches: int(options.prefetchBatches ?? 2, 'prefetchBatches', 0),
      prefetchChunks: int(options.prefetchChunks ?? 2, 'prefetchChunks', 0),
      shuffleBuffer: int(options.shuffleBuffer ?? 2048, 'shuffleBuffer', 1),
      cacheMb: options.cacheMb ?? 256,
      s3Endpoint: options.s3Endpoint,
      acceptAgreements: options.acceptAgreements ?? false,
    };
    this.#token = options.token;
    this.log = options.log === undefined ? console.log : options.log;
    const hp: Record<string, unknown> = { ...this.o, datamodule: 'deeplake' };
    delete hp.tokenizer;
    this.hparams = hp;
  }

  private async openDataset(where: string): Promise<DeepLakeDataset> {
    const storage = await openStorage(where, { token: this.#token, s3Endpoint: this.o.s3Endpoint, log: this.log, acceptAgreements: this.o.acceptAgreements });
    return DeepLakeDataset.open(storage, { branch: this.o.branch, commit: this.o.commit, cacheBytes: this.o.cacheMb * 1e6 });
  }

  /** The image and text tensors: the given keys, else URL/TEXT, else image/caption. */
  static resolveKeys(ds: DeepLakeDataset, imageKey?: string, textKey?: string): { image: DeepLakeTensor; text: DeepLakeTensor } {
    const pick = (given: string | undefined, defaults: string[], flag: string): DeepLakeTensor => {
      if (given !== undefined) {
        if (!ds.hasTensor(given)) throw new DeepLakeError(`${ds.root}: \`${flag}\` ${JSON.stringify(given)} is not a tensor of the dataset (tensors: ${[...ds.tensors.keys()].join(', ')})`);
        return ds.tensor(given);
      }
      const found = defaults.find((k) => ds.hasTensor(k));
      if (!found) throw new DeepLakeError(`${ds.root}: no ${defaults.join(' or ')} tensor; pass \`${flag}\` (tensors: ${[...ds.tensors.keys()].join(', ')})`);
      return ds.tensor(found);
    };
    const image = pick(imageKey, ['URL', 'image'], '--image_key');
    const text = pick(textKey, ['TEXT', 'caption'], '--text_key');
    if (image.meta.htype !== 'image') throw new DeepLakeError(`${ds.root}: tensor ${JSON.stringify(image.name)} has htype ${image.htype}, expected image or link[image] for \`--image_key\``);
    if (text.meta.htype !== 'text') throw new DeepLakeError(`${ds.root}: tensor ${JSON.stringify(text.name)} has htype ${text.htype}, expected text for \`--text_key\``);
    image.checkSupported();
    text.checkSupported();
    return { image, text };
  }

  /** The query the options ask for, or null. */
  effectiveQuery(ds: DeepLakeDataset): string | null {
    const parts: string[] = [];
    if (this.o.filterNsfw) {
      if (!ds.hasTensor('NSFW')) throw new DeepLakeError(`${ds.root}: \`--filter_NSFW\` needs an NSFW tensor (tensors: ${[...ds.tensors.keys()].join(', ')})`);
      parts.push((ds.hasTensor('WIDTH') ? NSFW_WIDTH_QUERY : NSFW_QUERY).replace(/^SELECT \* WHERE /, ''));
    }
    if (this.o.query) parts.push(this.o.query.trim().replace(/^select\s+\*\s+where\s+/i, ''));
    return parts.length ? `SELECT * WHERE ${parts.join(' and ')}` : null;
  }

  override async setup(_stage: Stage): Promise<void> {
    if (this.dataset) return;
    const ds = await this.openDataset(this.o.path);
    const { image, text } = DeepLakeDataModule.resolveKeys(ds, this.o.imageKey, this.o.textKey);
    this.keys = { image: image.name, text: text.name };
    const q = this.effectiveQuery(ds);
    this.selection = q ? await selectIndices(ds, q, { log: this.log }) : null;
    const n = this.selection ? this.selection.length : ds.length;
    this.log?.(`Deep Lake ${ds.root} (${ds.branch} @ ${ds.commitId.slice(0, 12)}): ${ds.length} samples, images ${JSON.stringify(image.name)} (${image.htype}${image.meta.sample_compression ? `, ${image.meta.sample_compression}` : ''}), captions ${JSON.stringify(text.name)}${q ? `; ${n} selected` : ''}`);
    if (n === 0) throw new DeepLakeError(`${ds.root}: no samples${q ? ` match ${JSON.stringify(q)}` : ''}`);
    this.dataset = ds;
    if (this.o.valPath) {
      this.valDataset = await this.openDataset(this.o.valPath);
      DeepLakeDataModule.resolveKeys(this.valDataset, this.o.imageKey, this.o.textKey);
    }
  }

  override trainDataloader(): DeepLakeLoader {
    const o = this.o;
    const crop = { scale: [o.resizeRatio, 1] as [number, number], ratio: [1, 1] as [number, number] };
    const loader = this.loader(this.requireDataset(), this.selection, o.shuffle, o.dropLast, this.state, (rng) => randomResizedCrop(o.imageSize, crop, rng).plan());
    const perRank = loader.samplesPerEpoch;
    if (o.dropLast && perRank < o.batchSize) {
      throw new MisconfigurationError(`\`--batch_size\` ${o.batchSize} is larger than the ${perRank} samples per rank, so dropLast leaves no batch.`);
    }
    return loader;
  }

  override valDataloader(): DeepLakeLoader | null {
    if (!this.valDataset) return null;
    const t = clipEvalTransform(this.o.imageSize);
    return this.loader(this.valDataset, null, false, false, { epoch: 0, position: 0, frozen: true }, () => t.plan());
  }

  override async teardown(_stage: Stage): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  override stateDict(): Record<string, unknown> {
    return { epoch: this.state.epoch, position: this.state.position, seed: this.o.seed, skipped: { ...this.skipped } };
  }

  override loadStateDict(state: Record<string, unknown>): void {
    const { epoch, position, skipped } = state;
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new Error(`deeplake datamodule state: bad epoch ${showValue(epoch)}`);
    this.state.epoch = epoch;
    this.state.position = typeof position === 'number' ? position : 0;
    if (skipped && typeof skipped === 'object') Object.assign(this.skipped, skipped);
  }

  private requireDataset(): DeepLakeDataset {
    if (!this.dataset) throw new Error('DeepLakeDataModule: call `await setup(stage)` before requesting dataloaders');
    return this.dataset;
  }

  private loader(ds: DeepLakeDataset, selection: Uint32Array | null, shuffle: boolean, dropLast: boolean, state: StreamState, plan: (rng: Generator) => ReturnType<ReturnType<typeof clipEvalTransform>['plan']>): DeepLakeLoader {
    const o = this.o;
    const { image, text } = DeepLakeDataModule.resolveKeys(ds, this.keys?.image ?? o.imageKey, this.keys?.text ?? o.textKey);
    return new DeepLakeLoader({
      image, text, length: ds.length, selection,
      batchSize: o.batchSize, shuffle, dropLast, seed: o.seed, rank: o.rank, worldSize: o.worldSize, imageSize: o.imageSize,
      plan, tokenizer: o.tokenizer, contextLength: o.contextLength,
      pool: () => (this.pool ??= new DecodePool(o.numWorkers)),
      prefetchBatches: o.prefetchBatches, prefetchChunks: o.prefetchChunks, shuffleBuffer: o.shuffleBuffer, state,
      onSkip: (index, reason, error) => {
        this.skipped[reason]++;
        if (this.warnings < MAX_SKIP_WARNINGS) this.log?.(`skipping ${ds.root}[${index}] (${reason.replace('_', ' ')}): ${error}`);
        else if (this.warnings === MAX_SKIP_WARNINGS) this.log?.('(further skip warnings suppressed; counts follow at epoch end)');
        this.warnings++;
      },
      onEpochEnd: (epoch, skipped) => {
        const parts = Object.entries(skipped).filter(([, v]) => v > 0).map(([k, v]) => `${v} ${k.replace('_', ' ')}`);
        if (parts.length) this.log?.(`epoch ${epoch}: skipped ${parts.join(', ')} samples (${Object.values(this.skipped).reduce((a, b) => a + b, 0)} in total)`);
      },
    });
  }
}

function camelKeys(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k.replace(/_([a-zA-Z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

register<DeepLakeDataModule>(
  'datamodule',
  'deeplake',
  (options) => {
    const o = camelKeys(options ?? {});
    if ('filterNSFW' in o) o.filterNsfw = o.filterNSFW;
    return new DeepLakeDataModule(o as unknown as DeepLakeDataModuleOptions);
  },
  { description: 'Deep Lake v3 dataset (--path local dir | s3:// | hub://), streamed, NSFW filter/TQL (train-CLIP Deep Lake fork)' },
);
