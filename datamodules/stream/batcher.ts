import { setMaxListeners } from 'node:events';
import type { DataLoader } from '../../core/datamodule.js';
import { Generator } from '../../core/random.js';
import { tf } from '../../core/tf.js';
import type { DecodedImage, TransformPlan } from '../decodeKernel.js';
import type { DecodeOutcome, DecodePool } from '../decodePool.js';
import type { ImageInput } from '../transforms.js';
import type { CaptionTokenizer, ImageTextBatch } from '../types.js';
import type { SkipLog } from './skips.js';

/** A sample ready to decode: where it came from, its encoded image and its candidate captions. */
export interface StreamItem {
  /** `__key__` (WebDataset), the dataset index or file name otherwise. */
  key: string;
  /** `__url__`: the shard, file or zip the sample came from. */
  url: string;
  image: ImageInput;
  captions: string[];
}

/** A loaded sample or why it cannot be used. */
export type ItemResult = { ok: true; item: StreamItem } | { ok: false; kind: 'corrupt' | 'incomplete'; what: string; why: string };

/** One position of a worker's stream: the sample (loading) and the seed of its random draws. */
export interface Pending {
  seed: number;
  result: ItemResult | Promise<ItemResult>;
}

/** A batch with where each row came from (what `lightclip data show` prints). */
export interface StreamBatch extends ImageTextBatch {
  keys: string[];
  urls: string[];
  /** The loader worker that made this batch (round-robin order). */
  worker?: number;
  /** Each row's encoded image (bytes, or the file path it is read from), with `keepEncoded`. */
  encoded?: Array<Uint8Array | string>;
}

/** What turns pending samples into batches (shared by the sharded and indexed loaders). */
export interface BatchingOptions {
  batchSize: number;
  imageSize: number;
  /** Draws a sample's transform plan from its generator (after the caption draw). */
  plan: (rng: Generator) => TransformPlan;
  tokenizer: CaptionTokenizer;
  contextLength: number;
  pool: () => DecodePool;
  skips: SkipLog;
  keepEncoded?: boolean;
}

interface Row {
  item: StreamItem;
  caption: string;
  image: DecodedImage;
}

/**
 * One worker's batches: pulls pending samples, decodes a batch's worth at once on the pool
 * (so decodes of a batch, and of several workers' batches, overlap), skips and counts failures
 * and pulls replacements, so every batch but a stream's last is full. Returns null when the
 * stream is exhausted (or `limit` batches were made).
 */
export class WorkerBatcher {
  private made = 0;
  private ended = false;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: AsyncIterator<Pending>,
    private readonly o: BatchingOptions,
    private readonly signal: AbortSignal,
    private readonly limit = Infinity,
    private readonly keepPartial = true,
  ) {}

  /** The next batch's rows (calls are served in order). */
  next(): Promise<Row[] | null> {
    const p = this.chain.then(() => this.make());
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Ends the source after the batches already requested (closing its open shard). */
  close(): void {
    this.chain = this.chain.then(() => this.end());
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    void this.source.return?.().catch(() => undefined);
  }

  private async make(): Promise<Row[] | null> {
    if (this.made >= this.limit) this.end();
    if (this.ended) return null;
    const o = this.o;
    const rows: Row[] = [];
    while (rows.length < o.batchSize && !this.ended) {
      const need = o.batchSize - rows.length;
      const inflight: Array<Promise<{ item: StreamItem; caption: string; outcome: DecodeOutcome } | null>> = [];
      for (let k = 0; k < need; k++) {
        const r = await this.source.next();
        if (r.done) {
          this.ended = true;
          break;
        }
        inflight.push(this.decode(r.value));
      }
      for (const p of inflight) {
        const d = await p;
        if (!d) continue;
        if (!d.outcome.ok) {
          if (!d.outcome.cancelled) o.skips.skip('corrupt', `${d.item.url}#${d.item.key}`, d.outcome.error);
          continue;
        }
        rows.push({ item: d.item, caption: d.caption, image: d.outcome.image });
      }
    }
    if (rows.length === 0 || (rows.length < o.batchSize && !this.keepPartial)) {
      this.ended = true;
      return null;
    }
    this.made++;
    return rows;
  }

  private async decode(p: Pending): Promise<{ item: StreamItem; caption: string; outcome: DecodeOutcome } | null> {
    const r = await p.result;
    if (!r.ok) {
      this.o.skips.skip(r.kind, r.what, r.why);
      return null;
    }
    const rng = new Generator(p.seed);
    const caption = r.item.captions[rng.randint(r.item.captions.length)]!;
    const outcome = await this.o.pool().decode(r.item.image, this.o.plan(rng), this.signal);
    return { item: r.item, caption, outcome };
  }
}

/** Collates rows into a batch (tokenizing first, so a tokenizer error leaks no tensor). */
export function collate(rows: Row[], o: BatchingOptions): StreamBatch {
  const n = rows.length;
  const s = o.imageSize;
  const captions = rows.map((r) => r.caption);
  const tok = o.tokenizer.tokenize(captions, o.contextLength);
  if (tok.shape[0] !== n || tok.shape[1] !== o.contextLength || tok.ids.length !== n * o.contextLength) {
    throw new Error(`tokenizer returned shape [${tok.shape.join(', ')}] for ${n} captions; expected [${n}, ${o.contextLength}]`);
  }
  const pixels = new Float32Array(n * s * s * 3);
  rows.forEach((r, i) => {
    if (r.image.height !== s || r.image.width !== s) throw new Error(`decoded ${r.item.url}#${r.item.key} to ${r.image.height}x${r.image.width}, expected ${s}x${s}`);
    pixels.set(r.image.data, i * s * s * 3);
  });
  const batch: StreamBatch = {
    images: tf.tensor4d(pixels, [n, s, s, 3], 'float32'),
    texts: tf.tensor2d(tok.ids, [n, o.contextLength], 'int32'),
    captions,
    paths: rows.map((r) => `${r.item.url}#${r.item.key}`),
    keys: rows.map((r) => r.item.key),
    urls: rows.map((r) => r.item.url),
  };
  if (o.keepEncoded) batch.encoded = rows.map((r) => r.item.image);
  return batch;
}

/**
 * Iterates workers' batches round-robin, as torch's DataLoader does with worker processes
 * (batch b from worker b mod W; an exhausted worker drops out of the cycle), keeping
 * `prefetch` batches requested ahead. The order depends only on the workers' streams and
 * `prefetch`, never on timing.
 */
export async function* roundRobin(makeWorkers: (signal: AbortSignal) => WorkerBatcher[], o: BatchingOptions, prefetch: number): AsyncGenerator<StreamBatch, void, undefined> {
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const workers = makeWorkers(abort.signal);
  const done = new Array<boolean>(workers.length).fill(false);
  const queue: Array<{ w: number; p: Promise<Row[] | null> }> = [];
  let cursor = 0;
  const top = (): void => {
    while (queue.length < Math.max(1, prefetch + 1)) {
      let w = -1;
      for (let k = 0; k < workers.length; k++) {
        const c = (cursor + k) % workers.length;
        if (!done[c]) {
          w = c;
          break;
        }
      }
      if (w < 0) return;
      cursor = (w + 1) % workers.length;
      const p = workers[w]!.next();
      p.catch(() => undefined);
      queue.push({ w, p });
    }
  };
  try {
    top();
    while (queue.length > 0) {
      const { w, p } = queue.shift()!;
      const rows = await p;
      if (rows === null) {
        done[w] = true;
        top();
        continue;
      }
      top();
      const batch = collate(rows, o);
      batch.worker = w;
      yield batch;
    }
  } finally {
    abort.abort();
    for (const w of workers) w.close();
  }
}

/** A DataLoader over {@link roundRobin} (the sharded and indexed loaders configure it). */
export interface StreamDataLoader extends DataLoader<StreamBatch> {
  readonly length?: number;
}
