/**
 * Streaming image/caption batches from a Deep Lake dataset, memory-bounded:
 *
 * - **Units** are the image tensor's chunks (a filter keeps, per chunk, a range of a sorted
 *   Uint32Array of selected indices). No per-sample JS objects exist outside the windows below.
 * - **Epoch plan** (identical on every rank): units permuted by `Generator(seed + epoch)`, then
 *   dealt greedily to the rank with the fewest samples so far, so each rank reads a disjoint
 *   share of chunks; shorter ranks wrap around their own samples up to the longest rank's
 *   count, so every rank yields the same number of batches (DDP steps stay in lockstep).
 * - **Order within a rank**: its units in plan order through a shuffle buffer of
 *   `shuffleBuffer` samples (seeded per epoch and rank); per-sample seeds for captions'
 *   augmentations come from the same generator, so the stream is independent of worker
 *   counts, prefetch depth and which samples turn out corrupt.
 * - **Fetching**: the next `prefetchChunks` units' chunks are requested ahead (shared
 *   through the dataset's LRU); decoding runs on the DecodePool with a window of
 *   batch × (1 + prefetchBatches) samples in flight.
 * - **Bad samples** (missing/corrupt/truncated chunk, undecodable image, empty image or
 *   caption) are skipped, counted by reason and reported at epoch end; batches stay full.
 */
import { setMaxListeners } from 'node:events';
import sharp from 'sharp';
import type { DataLoader } from '../../core/datamodule.js';
import { Generator } from '../../core/random.js';
import { checkShard } from '../../core/sampler.js';
import { tf } from '../../core/tf.js';
import type { DecodedImage, TransformPlan } from '../decodeKernel.js';
import type { DecodeOutcome, DecodePool } from '../decodePool.js';
import type { ImageTextBatch } from '../types.js';
import type { DeepLakeTensor } from './dataset.js';
import type { BatchedImageTextOptions } from '../imageTextLoader.js';

/** Why a sample was skipped. */
export type SkipReason = 'corrupt' | 'empty_image' | 'empty_caption';

/** Epoch bookkeeping shared with the datamodule (saved in checkpoints). */
export interface StreamState {
  epoch: number;
  /** Stream positions consumed by the batches handed out in `epoch` (skipped samples included). */
  position: number;
  frozen?: boolean;
}

export interface DeepLakeLoaderOptions extends BatchedImageTextOptions {
  image: DeepLakeTensor;
  text: DeepLakeTensor;
  /** Number of samples (the dataset length). */
  length: number;
  /** Sorted selected indices (a filter/query), or null for all `length` samples. */
  selection: Uint32Array | null;
  prefetchChunks: number;
  shuffleBuffer: number;
  state: StreamState;
  onSkip: (index: number, reason: SkipReason, error: string) => void;
  onEpochEnd: (epoch: number, skipped: Record<SkipReason, number>) => void;
}

/** The shard units: per image chunk, the range of selection positions (or sample indices) it covers. */
export interface Units {
  /** Unit u covers positions [starts[u], ends[u]) of the selection (or of 0..length-1). */
  starts: Float64Array;
  ends: Float64Array;
  /** Image chunk row of each unit (for prefetching). */
  rows: Uint32Array;
  total: number;
}

function lowerBound(a: Uint32Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function buildUnits(image: DeepLakeTensor, length: number, selection: Uint32Array | null): Units {
  const starts: number[] = [];
  const ends: number[] = [];
  const rows: number[] = [];
  for (let r = 0; r < image.numChunks; r++) {
    let [a, b] = image.chunkRange(r);
    b = Math.min(b, length);
    if (b <= a) continue; // tile rows after a sample's first, or beyond the dataset length
    if (selection) [a, b] = [lowerBound(selection, a), lowerBound(selection, b)];
    if (b <= a) continue;
    starts.push(a);
    ends.push(b);
    rows.push(r);
  }
  const total = ends.reduce((s, e, u) => s + e - starts[u]!, 0);
  return { starts: Float64Array.from(starts), ends: Float64Array.from(ends), rows: Uint32Array.from(rows), total };
}

/**
 * Splits the largest units in halves until there are at least `min` of them (a dataset of
 * fewer chunks than ranks must still give every rank a share; the halves stay contiguous).
 */
export function splitUnits(units: Units, min: number): Units {
  const starts = Array.from(units.starts);
  const ends = Array.from(units.ends);
  const rows = Array.from(units.rows);
  while (starts.length < min) {
    let big = -1;
    for (let u = 0; u < starts.length; u++) if (ends[u]! - starts[u]! >= 2 && (big < 0 || ends[u]! - starts[u]! > ends[big]! - starts[big]!)) big = u;
    if (big < 0) break;
    const mid = Math.floor((starts[big]! + ends[big]!) / 2);
    starts.splice(big + 1, 0, mid);
    ends.splice(big, 0, mid);
    rows.splice(big + 1, 0, rows[big]!);
  }
  return { starts: Float64Array.from(starts), ends: Float64Array.from(ends), rows: Uint32Array.from(rows), total: units.total };
}

/** One epoch's assignment of units to ranks (the same on every rank). */
export function planEpoch(units: Units, o: { shuffle: boolean; seed: number; epoch: number; worldSize: number }): { perRank: Uint32Array[]; counts: number[]; length: number } {
  const n = units.starts.length;
  const order = o.shuffle ? new Generator((o.seed + o.epoch) >>> 0).permutation(n) : Array.from({ length: n }, (_, i) => i);
  const counts = new Array<number>(o.worldSize).fill(0);
  const lists: number[][] = Array.from({ length: o.worldSize }, () => []);
  for (const u of order) {
    let best = 0;
    for (let r = 1; r < o.worldSize; r++) if (counts[r]! < counts[best]!) best = r;
    lists[best]!.push(u);
    counts[best]! += units.ends[u]! - units.starts[u]!;
  }
  return { perRank: lists.map((l) => Uint32Array.from(l)), counts, length: Math.max(0, ...counts) };
}

/**
 * This rank's stream of `[sampleIndex, seed, cursor]` (cursor: the sample's position in the
 * rank's unit list, counting wrap-arounds), `length` long: its units' samples through
 * the shuffle buffer, wrapping around when the rank has fewer than `length` samples.
 */
export function* rankStream(units: Units, selection: Uint32Array | null, mine: Uint32Array, length: number, o: { shuffle: boolean; seed: number; epoch: number; rank: number; shuffleBuffer: number }): IterableIterator<[number, number, number]> {
  if (length === 0 || mine.length === 0) return;
  const rng = new Generator((Math.imul(o.seed + o.epoch + 1, 0x9e3779b1) ^ Math.imul(o.rank + 1, 0x85ebca6b)) >>> 0);
  const cap = o.shuffle ? Math.max(1, o.shuffleBuffer) : 1;
  const bufIdx = new Float64Array(cap);
  const bufUnit = new Uint32Array(cap);
  let fill = 0;
  let emitted = 0;
  let k = 0; // unit cursor (wraps)
  let pos = units.starts[mine[0]!]!;
  const at = (p: number): number => (selection ? selection[p]! : p);
  const pull = (): [number, number] => {
    const u = mine[k % mine.length]!;
    if (pos >= units.ends[u]!) {
      k++;
      pos = units.starts[mine[k % mine.length]!]!;
    }
    return [at(pos++), k];
  };
  let supplied = 0;
  while (emitted < length) {
    while (fill < cap && supplied < length) {
      const [i, u] = pull();
      bufIdx[fill] = i;
      bufUnit[fill] = u;
      fill++;
      supplied++;
    }
    const j = cap === 1 ? 0 : rng.randint(fill);
    const i = bufIdx[j]!;
    const u = bufUnit[j]!;
    fill--;
    bufIdx[j] = bufIdx[fill]!;
    bufUnit[j] = bufUnit[fill]!;
    emitted++;
    yield [i, rng.nextUint32(), u];
  }
}

interface Pending {
  index: number;
  position: number;
  caption: Promise<string | { skip: SkipReason; error: string }>;
  outcome: Promise<DecodeOutcome | { skip: SkipReason; error: string }>;
}

const decoder = new TextDecoder();

export class DeepLakeLoader implements DataLoader<ImageTextBatch> {
  private units: { worldSize: number; units: Units } | null = null;

  constructor(private readonly options: DeepLakeLoaderOptions) {}

  private getUnits(): Units {
    const o = this.options;
    if (this.units?.worldSize !== o.worldSize) {
      // twice as many pieces as ranks, so the greedy deal can balance them
      const built = buildUnits(o.image, o.length, o.selection);
      this.units = { worldSize: o.worldSize, units: built.starts.length < o.worldSize ? splitUnits(built, 2 * o.worldSize) : built };
    }
    return this.units.units;
  }

  /** Samples this rank yields per epoch (the longest rank's share). */
  get samplesPerEpoch(): number {
    const o = this.options;
    return planEpoch(this.getUnits(), { shuffle: o.shuffle, seed: o.seed, epoch: o.state.epoch, worldSize: o.worldSize }).length;
  }

  /** Nominal batches per epoch on this rank (skipped samples can make it smaller). */
  get length(): number {
    const n = this.samplesPerEpoch;
    const b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  setDistributed(shard: { rank: number; worldSize: number }): void {
    checkShard(shard.rank, shard.worldSize);
    this.options.rank = shard.rank;
    this.options.worldSize = shard.worldSize;
  }

  setEpoch(epoch: number): void {
    if (!this.options.state.frozen && epoch !== this.options.state.epoch) {
      this.options.state.epoch = epoch;
      this.options.state.position = 0;
    }
  }

  /** Sample indices of this rank's epoch in stream order (for tests and `show`), without decoding. */
  epochIndices(epoch = this.options.state.epoch): number[] {
    const o = this.options;
    const units = this.getUnits();
    const plan = planEpoch(units, { shuffle: o.shuffle, seed: o.seed, epoch, worldSize: o.worldSize });
    return [...rankStream(units, o.selection, plan.perRank[o.rank]!, plan.length, { ...o, epoch })].map(([i]) => i);
  }

  private async caption(i: number): Promise<string | { skip: SkipReason; error: string }> {
    try {
      const c = decoder.decode((await this.options.text.raw(i)).bytes);
      return c.trim() ? c : { skip: 'empty_caption', error: 'empty caption' };
    } catch (err) {
      return { skip: 'corrupt', error: (err as Error).message };
    }
  }

  private async image(i: number, plan: TransformPlan, pool: DecodePool, signal: AbortSignal): Promise<DecodeOutcome | { skip: SkipReason; error: string }> {
    const t = this.options.image;
    let bytes: Uint8Array;
    try {
      const raw = await t.raw(i);
      if (t.meta.is_link) {
        const url = decoder.decode(raw.bytes);
        if (!url) return { skip: 'empty_image', error: 'empty link' };
        bytes = await t.dataset.fetchLink(url);
      } else if (raw.bytes.length === 0 || raw.shape.some((d) => d === 0)) {
        return { skip: 'empty_image', error: `empty image (shape [${raw.shape.join(', ')}])` };
      } else if (raw.imageCompression) {
        // a copy of just this sample: posting a view to a worker would clone the whole chunk's buffer
        bytes = pool.numWorkers > 0 ? raw.bytes.slice() : raw.bytes;
      } else {
        // raw pixels: a lossless, uncompressed PNG lets the one decode kernel handle them
        const [h, w, c = 1] = raw.shape as [number, number, number?];
        if (raw.shape.length < 2 || raw.shape.length > 3 || ![1, 3, 4].includes(c) || raw.bytes.length !== h * w * c) {
          return { skip: 'corrupt', error: `raw image of shape [${raw.shape.join(', ')}] (expected HxWxC with C 1, 3 or 4 uint8)` };
        }
        bytes = new Uint8Array(await sharp(raw.bytes, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } }).png({ compressionLevel: 0 }).toBuffer());
      }
    } catch (err) {
      return { skip: 'corrupt', error: (err as Error).message };
    }
    return pool.decode(bytes, plan, signal);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ImageTextBatch, void, undefined> {
    const o = this.options;
    const epoch = o.state.epoch;
    const units = this.getUnits();
    const plan = planEpoch(units, { shuffle: o.shuffle, seed: o.seed, epoch, worldSize: o.worldSize });
    const mine = plan.perRank[o.rank]!;
    const stream = rankStream(units, o.selection, mine, plan.length, { ...o, epoch });
    const pool = o.pool();
    const capacity = pool.numWorkers === 0 ? o.batchSize : o.batchSize * (1 + o.prefetchBatches);
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const window: Pending[] = [];
    let position = 0;
    let prefetched = -1;
    const prefetch = (k: number): void => {
      // the chunks of the next units in this rank's order (the LRU shares the loads)
      for (let c = Math.max(prefetched + 1, k); c <= k + o.prefetchChunks; c++) {
        const first = units.starts[mine[c % mine.length]!]!;
        void o.image.raw(o.selection ? o.selection[first]! : first).catch(() => undefined);
        prefetched = c;
      }
    };
    const fill = (): void => {
      while (window.length < capacity) {
        const next = stream.next();
        if (next.done) return;
        const [i, seed, k] = next.value;
        if (k > prefetched - o.prefetchChunks) prefetch(k);
        const rng = new Generator(seed);
        const tplan = o.plan(rng);
        window.push({ index: i, position: ++position, caption: this.caption(i), outcome: this.image(i, tplan, pool, abort.signal) });
      }
    };
    const skipped: Record<SkipReason, number> = { corrupt: 0, empty_image: 0, empty_caption: 0 };
    let rows: { index: number; caption: string; image: DecodedImage; position: number }[] = [];
    // replays of the consumed part of the epoch (a resume) draw the same stream
    try {
      fill();
      while (window.length > 0) {
        const item = window.shift()!;
        fill();
        const [caption, outcome] = await Promise.all([item.caption, item.outcome]);
        const bad = typeof caption !== 'string' ? caption : 'skip' in outcome ? outcome : !outcome.ok ? { skip: 'corrupt' as const, error: outcome.error } : null;
        if (bad) {
          skipped[bad.skip]++;
          o.onSkip(item.index, bad.skip, bad.error);
          continue;
        }
        rows.push({ index: item.index, caption: caption as string, image: (outcome as { ok: true; image: DecodedImage }).image, position: item.position });
        if (rows.length === o.batchSize) {
          const batch = this.collate(rows);
          o.state.position = rows[rows.length - 1]!.position;
          rows = [];
          yield batch;
        }
      }
      if (rows.length > 0 && !o.dropLast) {
        o.state.position = rows[rows.length - 1]!.position;
        yield this.collate(rows);
      }
      o.onEpochEnd(epoch, skipped);
    } finally {
      abort.abort();
    }
  }

  private collate(rows: { index: number; caption: string; image: DecodedImage }[]): ImageTextBatch {
    const o = this.options;
    const n = rows.length;
    const s = o.imageSize;
    const captions = rows.map((r) => r.caption);
    const tok = o.tokenizer.tokenize(captions, o.contextLength);
    if (tok.shape[0] !== n || tok.shape[1] !== o.contextLength) throw new Error(`tokenizer returned shape [${tok.shape.join(', ')}] for ${n} captions; expected [${n}, ${o.contextLength}]`);
    const pixels = new Float32Array(n * s * s * 3);
    rows.forEach((r, i) => {
      if (r.image.height !== s || r.image.width !== s) throw new Error(`decoded sample ${r.index} to ${r.image.height}x${r.image.width}, expected ${s}x${s}`);
      pixels.set(r.image.data, i * s * s * 3);
    });
    const root = o.image.dataset.root;
    return {
      images: tf.tensor4d(pixels, [n, s, s, 3], 'float32'),
      texts: tf.tensor2d(tok.ids, [n, o.contextLength], 'int32'),
      captions,
      paths: rows.map((r) => `${root}[${r.index}]`),
    };
  }
}
