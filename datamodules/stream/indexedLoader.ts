import { checkShard, epochOrder, numBatches, shardLength } from '../../core/sampler.js';
import { roundRobin, WorkerBatcher, type BatchingOptions, type ItemResult, type Pending, type StreamBatch, type StreamDataLoader } from './batcher.js';

/** A map-style dataset: `size` samples, each loaded by index (a file path, zip member, pickle...). */
export interface IndexedSource {
  readonly size: number;
  load(index: number): ItemResult | Promise<ItemResult>;
}

/** Options of {@link IndexedLoader}. */
export interface IndexedLoaderOptions extends BatchingOptions {
  source: IndexedSource;
  shuffle: boolean;
  dropLast: boolean;
  seed: number;
  rank: number;
  worldSize: number;
  prefetchBatches: number;
  state: { epoch: number; frozen?: boolean };
}

/**
 * A map-style dataset through the same batching as the sharded stream: torch's
 * DistributedSampler order (core/sampler's epochOrder: permutation seeded by seed + epoch,
 * padded, every world-th index from rank) with a per-position seed for the caption draw and
 * crop, samples loaded and decoded a batch at a time on the pool. A sample that fails to load
 * or decode is skipped, counted and replaced by the next, so batches stay full; only the last
 * may be short (dropped in training). Memory: one batch of loads plus the index order.
 */
export class IndexedLoader implements StreamDataLoader {
  constructor(readonly options: IndexedLoaderOptions) {}

  get length(): number {
    const o = this.options;
    return numBatches(shardLength(o.source.size, o.worldSize), o.batchSize, o.dropLast);
  }

  setDistributed(shard: { rank: number; worldSize: number }): void {
    checkShard(shard.rank, shard.worldSize);
    this.options.rank = shard.rank;
    this.options.worldSize = shard.worldSize;
  }

  setEpoch(epoch: number): void {
    if (!this.options.state.frozen) this.options.state.epoch = epoch;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StreamBatch, void, undefined> {
    const o = this.options;
    const epoch = o.state.epoch;
    o.skips.startEpoch();
    const order = epochOrder({ size: o.source.size, shuffle: o.shuffle, seed: o.seed, epoch, rank: o.rank, worldSize: o.worldSize });
    async function* pending(): AsyncGenerator<Pending, void, undefined> {
      for (let k = 0; k < order.indices.length; k++) {
        const result = o.source.load(order.indices[k]!);
        if (result instanceof Promise) result.catch(() => undefined);
        yield { seed: order.seeds[k]!, result: Promise.resolve(result).catch((err: unknown): ItemResult => ({ ok: false, kind: 'corrupt', what: `sample ${order.indices[k]}`, why: err instanceof Error ? err.message : String(err) })) };
      }
    }
    yield* roundRobin((signal) => [new WorkerBatcher(pending(), o, signal, Infinity, !o.dropLast)], o, o.prefetchBatches);
    o.skips.endEpoch(epoch);
  }
}
