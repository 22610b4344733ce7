import { tf, type Tensor } from './tf.js';
import type { DataLoader } from './datamodule.js';
import { MisconfigurationError } from './errors.js';
import { checkShard, epochOrder, numBatches, shardLength } from './sampler.js';

/** Options of {@link ArrayDataLoader}. */
export interface ArrayDataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (seeded by `seed` + epoch). */
  shuffle?: boolean;
  /** Drop the last incomplete batch. */
  dropLast?: boolean;
  seed?: number;
}

/**
 * Batches of in-memory tensors (PyTorch's `DataLoader(TensorDataset(...))`): every field
 * of `data` is sliced along its first axis; batches are `{field: Tensor}`. Shuffling is
 * seeded by `seed` + epoch (`setEpoch`), so a resumed run replays the same order; under DDP
 * each rank reads its shard (`setDistributed`), as torch's DistributedSampler.
 *
 * @example new ArrayDataLoader({ x, y }, { batchSize: 8, shuffle: true })
 */
export class ArrayDataLoader<K extends string = string> implements DataLoader<Record<K, Tensor>> {
  private epoch = 0;
  private rank = 0;
  private worldSize = 1;
  private readonly n: number;

  constructor(
    private readonly data: Record<K, Tensor>,
    private readonly options: ArrayDataLoaderOptions,
  ) {
    const sizes = Object.values<Tensor>(data).map((t) => t.shape[0]!);
    if (sizes.length === 0) throw new MisconfigurationError('`ArrayDataLoader` needs at least one tensor.');
    if (sizes.some((s) => s !== sizes[0])) throw new MisconfigurationError(`\`ArrayDataLoader\` tensors must share their first dimension, got ${sizes.join(', ')}.`);
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new MisconfigurationError(`\`batchSize\` must be an integer ≥ 1, got ${options.batchSize}.`);
    }
    this.n = sizes[0]!;
  }

  get length(): number {
    return numBatches(shardLength(this.n, this.worldSize), this.options.batchSize, this.options.dropLast ?? false);
  }

  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  setDistributed(shard: { rank: number; worldSize: number }): void {
    checkShard(shard.rank, shard.worldSize);
    this.rank = shard.rank;
    this.worldSize = shard.worldSize;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Record<K, Tensor>> {
    const order = epochOrder({ size: this.n, shuffle: this.options.shuffle ?? false, seed: this.options.seed ?? 0, epoch: this.epoch, rank: this.rank, worldSize: this.worldSize }).indices;
    const b = this.options.batchSize;
    for (let i = 0; i < this.length; i++) {
      const idx = order.slice(i * b, (i + 1) * b);
      const batch = {} as Record<K, Tensor>;
      tf.tidy(() => {
        const indices = tf.tensor1d(idx, 'int32');
        for (const k of Object.keys(this.data) as K[]) batch[k] = tf.keep(tf.gather(this.data[k], indices));
      });
      yield batch;
    }
  }
}
