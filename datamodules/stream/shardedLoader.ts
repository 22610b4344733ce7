import { MisconfigurationError } from '../../core/errors.js';
import { Generator } from '../../core/random.js';
import { checkShard } from '../../core/sampler.js';
import { roundRobin, WorkerBatcher, type BatchingOptions, type ItemResult, type Pending, type StreamBatch, type StreamDataLoader } from './batcher.js';
import { bufferShuffle, bufferShuffleList, mixSeed } from './shuffle.js';

/** Where a sharded loader's samples come from. */
export interface ShardSource {
  /** Shard URLs, in the order given. */
  shards: readonly string[];
  /** Per-shard weights for resampling (`--train_data_upsampling_factors`). */
  weights?: readonly number[];
  /** The usable samples of one shard; throws when the shard fails (counted, then skipped). */
  read(url: string): AsyncIterable<ItemResult>;
  /** Flag named in errors (`--train_data`, `--val_data`). */
  flag: string;
}

/** Options of {@link ShardedLoader}. */
export interface ShardedLoaderOptions extends BatchingOptions {
  source: ShardSource;
  /** Training: shuffle shards (seed + epoch) and samples, `with_epoch` length, drop partial batches. */
  training: boolean;
  /** Draw shards with replacement per worker (`--dataset_resampled`); nothing is split. */
  resampled: boolean;
  /** Samples per epoch over all ranks (`--train_num_samples` / sizes.json); undefined: one pass. */
  numSamples?: number;
  /** Logical workers (open_clip's `--workers`): each reads its own shards into its own batches. */
  workers: number;
  seed: number;
  rank: number;
  worldSize: number;
  /** Shard shuffle buffer (webdataset detshuffle: 2000, initial 500). */
  shardShuffle?: [number, number];
  /** Sample shuffle buffer (open_clip: 5000, initial 1000). */
  sampleShuffle?: [number, number];
  prefetchBatches: number;
  state: { epoch: number; frozen?: boolean };
  onEpochEnd?: (epoch: number) => void;
}

/**
 * open_clip's WebDataset pipeline (`get_wds_dataset`) as a lightclip DataLoader:
 *
 *   shards → (buffer-shuffled with seed + epoch, identical on every rank) → split_by_node
 *   [rank::world] → split_by_worker [w::workers] | resampled with replacement (weighted) per
 *   worker → samples → shuffle buffer → per-sample seed → decode on the pool → batches
 *
 * Every random draw comes from generators seeded by (seed, epoch, rank, worker, pass), so an
 * epoch is exactly reproducible (a resumed run replays it), whatever the decode thread count.
 * With an epoch length, each worker makes ceil(ceil(N / (batch·world)) / workers) batches
 * (`with_epoch`), starting a new pass over its shards when they run dry.
 */
export class ShardedLoader implements StreamDataLoader {
  constructor(readonly options: ShardedLoaderOptions) {}

  /** Batches per worker this epoch (undefined without an epoch length). */
  get perWorkerBatches(): number | undefined {
    const o = this.options;
    if (o.numSamples === undefined) return undefined;
    return Math.ceil(Math.ceil(o.numSamples / (o.batchSize * o.worldSize)) / this.workerCount);
  }

  get length(): number | undefined {
    const per = this.perWorkerBatches;
    return per === undefined ? undefined : per * this.workerCount;
  }

  /** Logical workers actually used: evaluation caps them by the shards this rank has. */
  get workerCount(): number {
    const o = this.options;
    if (o.training || o.resampled) return o.workers;
    return Math.max(1, Math.min(o.workers, Math.ceil(o.source.shards.length / o.worldSize)));
  }

  setDistributed(shard: { rank: number; worldSize: number }): void {
    checkShard(shard.rank, shard.worldSize);
    this.options.rank = shard.rank;
    this.options.worldSize = shard.worldSize;
    this.check();
  }

  setEpoch(epoch: number): void {
    if (!this.options.state.frozen) this.options.state.epoch = epoch;
  }

  /** open_clip's assert: without resampling every worker of every rank needs a shard. */
  check(): void {
    const o = this.options;
    const n = o.source.shards.length;
    if (o.resampled) return;
    const need = o.training ? o.workers * o.worldSize : o.worldSize;
    if (n < need) {
      throw new MisconfigurationError(
        `\`${o.source.flag}\` has ${n} shard${n === 1 ? '' : 's'}, fewer than ${o.training ? `--num_workers ${o.workers} × ` : ''}world size ${o.worldSize} = ${need}: every ${o.training ? 'worker of every rank' : 'rank'} needs at least one shard. Use more shards, fewer workers${o.training ? ' or --dataset_resampled' : ''}.`,
      );
    }
  }

  /** The shards worker `w` reads in pass `pass` of `epoch` (an endless draw when resampled). */
  *workerShards(w: number, epoch: number, pass: number): IterableIterator<string> {
    const o = this.options;
    const shards = o.source.shards;
    const W = this.workerCount;
    if (o.resampled) {
      const weights = o.source.weights;
      const cum: number[] = [];
      let total = 0;
      for (let i = 0; i < shards.length; i++) cum.push((total += weights ? weights[i]! : 1));
      const rng = new Generator(mixSeed(o.seed, epoch, o.rank, w, pass, 2));
      for (;;) {
        const x = rng.random() * total;
        let lo = 0;
        let hi = cum.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cum[mid]! > x) hi = mid;
          else lo = mid + 1;
        }
        yield shards[lo]!;
      }
    }
    const [bufsize, initial] = o.shardShuffle ?? [2000, 500];
    const list = o.training ? bufferShuffleList(shards, bufsize, initial, new Generator((o.seed + epoch) >>> 0)) : [...shards];
    const node = list.filter((_, i) => i % o.worldSize === o.rank);
    for (let i = w; i < node.length; i += W) yield node[i]!;
  }

  /** Worker `w`'s pending samples for one epoch (passes restart while `restart`). */
  private async *workerStream(w: number, epoch: number, restart: boolean): AsyncGenerator<Pending, void, undefined> {
    const o = this.options;
    for (let pass = 0; ; pass++) {
      let produced = 0;
      const raw = this.passItems(w, epoch, pass);
      const [bufsize, initial] = o.sampleShuffle ?? [5000, 1000];
      const items = o.training ? bufferShuffle(raw, bufsize, initial, new Generator(mixSeed(o.seed, epoch, o.rank, w, pass, 1))) : raw;
      const seeds = new Generator(mixSeed(o.seed, epoch, o.rank, w, pass, 3));
      for await (const result of items) {
        if (result.ok) produced++;
        yield { seed: seeds.nextUint32(), result };
      }
      if (produced === 0) {
        const first = o.skips.firstShardError;
        const shards = [...(o.resampled ? [] : this.workerShards(w, epoch, pass))];
        throw new Error(
          `${o.source.flag}: worker ${w} of rank ${o.rank} read no usable sample from ${o.resampled ? 'its resampled shards' : `its ${shards.length} shard(s) (${shards.slice(0, 3).join(', ')}${shards.length > 3 ? ', ...' : ''})`}; ` +
            (first ? `first failure: ${first}` : 'expected tar shards holding an image and a text member per sample'),
        );
      }
      if (!restart) return;
    }
  }

  private async *passItems(w: number, epoch: number, pass: number): AsyncGenerator<ItemResult, void, undefined> {
    const o = this.options;
    let count = 0;
    for (const url of this.workerShards(w, epoch, pass)) {
      try {
        for await (const r of o.source.read(url)) {
          count++;
          yield r;
        }
      } catch (err) {
        o.skips.skip('shard', url, err instanceof Error ? err.message : String(err));
      }
      // Resampling draws forever: stop a pass that keeps finding nothing.
      if (o.resampled && count === 0 && o.skips.epoch.shard >= 100) return;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StreamBatch, void, undefined> {
    const o = this.options;
    this.check();
    const epoch = o.state.epoch;
    o.skips.startEpoch();
    const per = this.perWorkerBatches;
    const restart = o.training && per !== undefined;
    if (o.resampled && per === undefined) {
      throw new MisconfigurationError(`\`--dataset_resampled\` needs an epoch length: give \`--train_num_samples\` (or a sizes.json beside the shards).`);
    }
    yield* roundRobin(
      (signal) =>
        Array.from({ length: this.workerCount }, (_, w) => new WorkerBatcher(this.workerStream(w, epoch, restart)[Symbol.asyncIterator](), o, signal, per ?? Infinity, !o.training)),
      o,
      o.prefetchBatches,
    );
    o.skips.endEpoch(epoch);
    o.onEpochEnd?.(epoch);
  }
}
