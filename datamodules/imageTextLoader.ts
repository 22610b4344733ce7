import { setMaxListeners } from 'node:events';
import type { DataLoader } from '../core/datamodule.js';
import { Generator } from '../core/random.js';
import { checkShard } from '../core/sampler.js';
import { tf } from '../core/tf.js';
import type { DecodedImage, TransformPlan } from './decodeKernel.js';
import { DecodeInfrastructureError, type DecodeOutcome, type DecodePool } from './decodePool.js';
import { epochOrder, numBatches, shardLength } from './sampler.js';
import type { CaptionTokenizer, ImageTextBatch } from './types.js';

/** A sample the loader can decode: an image file and its candidate captions. */
export interface ImageTextSample {
  image: string;
  captions: string[];
}

/**
 * Epoch bookkeeping shared between a loader and its datamodule, so `loader.setEpoch(e)` is
 * what `datamodule.stateDict()` saves.
 */
export interface EpochState {
  epoch: number;
  /** State of the epoch generator after the last epoch's draws. */
  generatorState: number[];
  /** Ignore `setEpoch` (validation draws the same captions every time). */
  frozen?: boolean;
}

/** What every image–caption loader takes: batching, sharding, transforms, tokenizer, decode pool. */
export interface BatchedImageTextOptions {
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  seed: number;
  rank: number;
  worldSize: number;
  /** Output image side (every plan must produce size×size). */
  imageSize: number;
  /** Draws one sample's transform plan from that sample's generator. */
  plan: (rng: Generator) => TransformPlan;
  tokenizer: CaptionTokenizer;
  contextLength: number;
  /** The pool to decode with (created lazily by the owner, shared between loaders). */
  pool: () => DecodePool;
  /** Batches decoded ahead of the one being consumed (with workers). */
  prefetchBatches: number;
}

/** Options of {@link ImageTextLoader}. */
export interface ImageTextLoaderOptions extends BatchedImageTextOptions {
  samples: readonly ImageTextSample[];
  state: EpochState;
  /** Called for each sample skipped because its image could not be decoded. */
  onSkip: (path: string, error: string) => void;
  /** Called when an epoch's iteration ends normally, with the number of samples skipped. */
  onEpochEnd: (epoch: number, skipped: number) => void;
}

interface Pending {
  path: string;
  caption: string;
  outcome: Promise<DecodeOutcome>;
}

interface Row {
  path: string;
  caption: string;
  image: DecodedImage;
}

/** Picks one of a sample's captions with `rng` (exactly one draw, whatever the number of captions). */
export function drawCaption(sample: ImageTextSample, rng: Generator): string {
  return sample.captions[rng.randint(sample.captions.length)]!;
}

/**
 * Batches image/caption samples for one epoch at a time: this rank's shard of the epoch order
 * (DistributedSampler semantics), decoded through a {@link DecodePool} with a bounded window of
 * `prefetchBatches` batches in flight, in order, so the stream is deterministic whatever the
 * worker count. A sample whose image fails to decode is skipped, counted and replaced by the
 * next ones, so batches keep `batchSize` rows; only the last batch may be short (or dropped).
 *
 * Tensors are created only when a batch is handed out, never for prefetched samples, so
 * breaking out of the loop leaks nothing; the caller disposes the batches it received.
 */
export class ImageTextLoader implements DataLoader<ImageTextBatch> {
  constructor(private readonly options: ImageTextLoaderOptions) {}

  /**
   * Nominal number of batches per epoch on this rank. Corrupt images found during the epoch
   * can make the actual count smaller (their replacements come from the end of the shard).
   */
  get length(): number {
    const o = this.options;
    return numBatches(shardLength(o.samples.length, o.worldSize), o.batchSize, o.dropLast);
  }

  /** Restricts the loader to one rank's shard (the Trainer calls this under DDP). */
  setDistributed(shard: { rank: number; worldSize: number }): void {
    checkShard(shard.rank, shard.worldSize);
    this.options.rank = shard.rank;
    this.options.worldSize = shard.worldSize;
  }

  /** Selects the epoch whose shuffle and draws the next iteration uses (seeded by seed + epoch). */
  setEpoch(epoch: number): void {
    if (!this.options.state.frozen) this.options.state.epoch = epoch;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ImageTextBatch, void, undefined> {
    const o = this.options;
    const epoch = o.state.epoch;
    const order = epochOrder({
      size: o.samples.length,
      shuffle: o.shuffle,
      seed: o.seed,
      epoch,
      rank: o.rank,
      worldSize: o.worldSize,
    });
    o.state.generatorState = order.generatorState;
    const pool = o.pool();
    // Without workers, decode one batch at a time (torch's num_workers=0 does not read ahead).
    const capacity = pool.numWorkers === 0 ? o.batchSize : o.batchSize * (1 + o.prefetchBatches);
    const abort = new AbortController();
    // Up to batch × prefetch decodes listen on this signal at once.
    setMaxListeners(0, abort.signal);
    const window: Pending[] = [];
    let next = 0;
    const fill = (): void => {
      while (window.length < capacity && next < order.indices.length) {
        const sample = o.samples[order.indices[next]!]!;
        const rng = new Generator(order.seeds[next]!);
        next++;
        const caption = drawCaption(sample, rng);
        window.push({ path: sample.image, caption, outcome: pool.decode(sample.image, o.plan(rng), abort.signal) });
      }
    };

    let skipped = 0;
    let rows: Row[] = [];
    try {
      fill();
      while (window.length > 0) {
        const item = window.shift()!;
        fill();
        const outcome = await item.outcome;
        if (!outcome.ok && (outcome.cancelled || outcome.fatal)) {
          // Not the image's fault: never a "corrupt image". A closed pool means the run is
          // ending (the error that ended it is reported by whoever closed it).
          throw new DecodeInfrastructureError(
            outcome.cancelled
              ? `decoding stopped while reading epoch ${epoch} (${outcome.error}): the image pipeline was shut down before the epoch ended`
              : `image decoding failed for a reason other than the image (${outcome.error}) while reading ${item.path}`,
          );
        }
        if (!outcome.ok) {
          skipped++;
          o.onSkip(item.path, outcome.error);
          continue;
        }
        rows.push({ path: item.path, caption: item.caption, image: outcome.image });
        if (rows.length === o.batchSize) {
          const batch = this.collate(rows);
          rows = [];
          yield batch;
        }
      }
      if (rows.length > 0 && !o.dropLast) yield this.collate(rows);
      o.onEpochEnd(epoch, skipped);
    } finally {
      // Drops queued decodes when the consumer stops early; running ones finish unobserved.
      abort.abort();
    }
  }

  private collate(rows: Row[]): ImageTextBatch {
    const o = this.options;
    const n = rows.length;
    const s = o.imageSize;
    const captions = rows.map((r) => r.caption);
    const paths = rows.map((r) => r.path);
    // Tokenize first: if the tokenizer throws, no tensor has been created yet.
    const tok = o.tokenizer.tokenize(captions, o.contextLength);
    if (tok.shape[0] !== n || tok.shape[1] !== o.contextLength || tok.ids.length !== n * o.contextLength) {
      throw new Error(
        `tokenizer returned shape [${tok.shape.join(', ')}] with ${tok.ids.length} ids for ${n} captions; expected [${n}, ${o.contextLength}]`,
      );
    }
    const pixels = new Float32Array(n * s * s * 3);
    rows.forEach((r, i) => {
      if (r.image.height !== s || r.image.width !== s) {
        throw new Error(`decoded ${r.path} to ${r.image.height}x${r.image.width}, expected ${s}x${s}`);
      }
      pixels.set(r.image.data, i * s * s * 3);
    });
    return {
      images: tf.tensor4d(pixels, [n, s, s, 3], 'float32'),
      texts: tf.tensor2d(tok.ids, [n, o.contextLength], 'int32'),
      captions,
      paths,
    };
  }
}
