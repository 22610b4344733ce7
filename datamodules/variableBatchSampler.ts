/**
 * CoreNet's multi-scale variable-batch sampler (`variable_batch_sampler` and its DDP variant):
 * each batch draws one (height, width, batch size) from a fixed list of scales; the batch size
 * keeps pixels per batch about constant (≤ crop_h·crop_w·batch0). Ranks shard the epoch's index
 * list and draw the same scale sequence from the shared seed, so every rank has the same batch
 * shape at every step (the all-gather of CLIP's loss needs that).
 *
 * Randomness comes from core/random's Generator seeded by (seed, epoch), not Python's `random`:
 * the same scale list and sharding rules as CoreNet, but not its exact draw sequence.
 */
import { MisconfigurationError } from '../core/errors.js';
import { Generator } from '../core/random.js';

/** CoreNet's `make_divisible`: nearest multiple of d (halves up), at least `min`, bumped by d if it lost > 10%. */
export function makeDivisible(v: number, d: number, min: number = d): number {
  let out = Math.max(min, Math.floor((v + d / 2) / d) * d);
  if (out < 0.9 * v) out += d;
  return out;
}

export interface ScaleOptions {
  cropW: number;
  cropH: number;
  /** Batch size at the base crop (CoreNet `train_batch_size0`). */
  batchSize0: number;
  minW: number;
  maxW: number;
  minH: number;
  maxH: number;
  maxScales: number;
  /** `check_scale`: sizes are rounded to multiples of it. */
  checkScale: number;
}

export interface Scale {
  h: number;
  w: number;
  batchSize: number;
}

function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  return Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
}

/** CoreNet's `image_batch_pairs`: the sorted distinct (h, w, batch) tuples. */
export function imageBatchPairs(o: ScaleOptions): Scale[] {
  for (const [k, v] of Object.entries(o)) {
    if (!(typeof v === 'number' && v > 0)) throw new MisconfigurationError(`variable batch sampler: \`${k}\` must be a positive number, got ${String(v)}`);
  }
  const widths = linspace(o.minW, o.maxW, o.maxScales);
  if (!widths.includes(o.cropW)) widths.push(o.cropW);
  const heights = linspace(o.minH, o.maxH, o.maxScales);
  if (!heights.includes(o.cropH)) heights.push(o.cropH);
  const sizes = new Map<string, [number, number]>();
  for (let i = 0; i < Math.min(widths.length, heights.length); i++) {
    const h = makeDivisible(heights[i]!, o.checkScale);
    const w = makeDivisible(widths[i]!, o.checkScale);
    sizes.set(`${h}x${w}`, [h, w]);
  }
  const pixels = o.cropW * o.cropH * o.batchSize0;
  const out = new Map<string, Scale>();
  for (const [h, w] of sizes.values()) {
    // Python: max(1, int(round(n / (h·w), 2)))
    const b = Math.max(1, Math.trunc(Math.round((pixels / (h * w)) * 100) / 100));
    out.set(`${h}x${w}x${b}`, { h, w, batchSize: b });
  }
  return [...out.values()].sort((a, b) => a.h - b.h || a.w - b.w || a.batchSize - b.batchSize);
}

export interface VariableBatchOptions {
  numSamples: number;
  scales: readonly Scale[];
  seed?: number;
  rank?: number;
  worldSize?: number;
  /** GPUs (processes) per node; with `useShards`, nodes get contiguous chunks. Default worldSize. */
  perNode?: number;
  useShards?: boolean;
  shuffle?: boolean;
  /** Epochs before this one are sequential (CoreNet `start_shuffling_from_epoch`, with shards). */
  startShufflingFromEpoch?: number;
}

export interface VariableBatch {
  h: number;
  w: number;
  indices: number[];
}

/** The epoch's batches on one rank. */
export function variableBatches(o: VariableBatchOptions, epoch: number): VariableBatch[] {
  const world = o.worldSize ?? 1;
  const rank = o.rank ?? 0;
  if (!(Number.isInteger(world) && world >= 1 && Number.isInteger(rank) && rank >= 0 && rank < world)) {
    throw new MisconfigurationError(`variable batch sampler: rank ${rank} must be in [0, ${world})`);
  }
  if (o.scales.length === 0) throw new MisconfigurationError('variable batch sampler: no scales');
  const seed = o.seed ?? 0;
  const n = o.numSamples;
  // Pad to a multiple of the world size (DDP: every rank gets the same number of samples).
  const total = Math.ceil(n / world) * world;
  const base = Array.from({ length: total }, (_, i) => i % n);
  let mine: number[];
  if (o.useShards && world > 1) {
    const perNode = o.perNode ?? world;
    const nodes = Math.max(1, Math.floor(world / perNode));
    const node = Math.floor(rank / perNode);
    const chunk = Math.ceil(total / nodes);
    let part = base.slice(node * chunk, (node + 1) * chunk);
    if ((o.shuffle ?? true) && epoch >= (o.startShufflingFromEpoch ?? 0)) {
      const p = new Generator(seed * 1_000_003 + epoch * 7919 + node).permutation(part.length);
      part = p.map((i) => part[i]!);
    }
    mine = part.filter((_, i) => i % perNode === rank % perNode);
  } else {
    const order = (o.shuffle ?? true) ? new Generator(seed * 1_000_003 + epoch).permutation(total).map((i) => base[i]!) : base;
    mine = order.filter((_, i) => i % world === rank);
  }
  // Scale draws: one shared stream for all ranks.
  const g = new Generator(seed * 1_000_003 + epoch + 0x5eed);
  const out: VariableBatch[] = [];
  for (let start = 0; start < mine.length; ) {
    const s = o.scales[g.randint(o.scales.length)]!;
    const ids = mine.slice(start, start + s.batchSize);
    // A short final batch is filled from the start of this rank's list (CoreNet).
    for (let k = 0; ids.length < s.batchSize && mine.length > 0; k++) ids.push(mine[k % mine.length]!);
    start += s.batchSize;
    out.push({ h: s.h, w: s.w, indices: ids });
  }
  return out;
}
