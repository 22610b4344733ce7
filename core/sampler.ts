import { MisconfigurationError, showValue } from './errors.js';
import { Generator } from './random.js';

/** Options of {@link epochOrder}. */
export interface EpochOrderOptions {
  /** Number of samples in the dataset. */
  size: number;
  /** Permute (seeded by `seed + epoch`) or keep 0..size-1. */
  shuffle: boolean;
  seed: number;
  epoch: number;
  /** This process's rank and the number of processes (DistributedSampler). */
  rank?: number;
  worldSize?: number;
}

/** One epoch's sample order on one rank, with a per-sample seed for that sample's random draws. */
export interface EpochOrder {
  /** Dataset indices in the order this rank visits them. */
  indices: number[];
  /** `seeds[k]` seeds the caption choice and augmentation of `indices[k]`. */
  seeds: Uint32Array;
  /** The epoch generator's state after drawing (saved in checkpoints). */
  generatorState: number[];
}

/**
 * Checks a rank/world size pair (options `rank`, `worldSize`).
 * @throws MisconfigurationError when not 0 <= rank < worldSize.
 */
export function checkShard(rank: number, worldSize: number): void {
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new MisconfigurationError(`\`worldSize\` must be a positive integer, got ${showValue(worldSize)}.`);
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new MisconfigurationError(`\`rank\` must be an integer in [0, ${worldSize - 1}] for worldSize ${worldSize}, got ${showValue(rank)}.`);
  }
}

/** Number of samples each rank gets: `ceil(size / worldSize)` (DistributedSampler, no drop_last). */
export function shardLength(size: number, worldSize: number): number {
  return Math.ceil(size / worldSize);
}

/**
 * The epoch's order, as torch's DistributedSampler builds it: a permutation from a generator
 * seeded with `seed + epoch` (identical on every rank), padded by wrapping around to a
 * multiple of `worldSize`, then every `worldSize`-th element from `rank`. Shards are disjoint
 * up to the padding and all the same length.
 *
 * Per-sample seeds are drawn for the whole padded epoch, position by position, right after
 * the permutation, so a sample's caption and crop do not depend on how many workers decode,
 * how far ahead they prefetch, or which earlier samples turned out corrupt.
 */
export function epochOrder(options: EpochOrderOptions): EpochOrder {
  const { size, shuffle, seed, epoch } = options;
  const rank = options.rank ?? 0;
  const worldSize = options.worldSize ?? 1;
  checkShard(rank, worldSize);
  const gen = new Generator((seed + epoch) >>> 0);
  const base = shuffle ? gen.permutation(size) : Array.from({ length: size }, (_, i) => i);
  const total = shardLength(size, worldSize) * worldSize;
  const seedsAll = new Uint32Array(total);
  for (let k = 0; k < total; k++) seedsAll[k] = gen.nextUint32();
  const indices: number[] = [];
  const seeds: number[] = [];
  if (size > 0) {
    for (let k = rank; k < total; k += worldSize) {
      indices.push(base[k % size]!);
      seeds.push(seedsAll[k]!);
    }
  }
  return { indices, seeds: Uint32Array.from(seeds), generatorState: gen.getState() };
}

/** Number of batches of `batchSize` from `samples` samples. */
export function numBatches(samples: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(samples / batchSize) : Math.ceil(samples / batchSize);
}
