import { MisconfigurationError, showValue } from '../../core/errors.js';
import type { Env } from './environment.js';

/**
 * The process-group interface DDPStrategy, the launcher's workers and the benchmarks use,
 * whatever carries the bytes: Gloo (native, `gloo.ts`), Open MPI (dlopen, `mpi.ts`) or
 * lightclip's own zeromq layer (`processGroup.ts`). Collectives must be called by every
 * rank in the same order; after any failure the group is broken and every later collective
 * rethrows the first error (a DistributedError naming the ranks to blame).
 */

/** How values combine in an all-reduce. */
export type ReduceOp = 'sum' | 'mean';

/** The backends (`--ddp_backend`, Lightning's `process_group_backend`). */
export type BackendName = 'gloo' | 'mpi' | 'zmq';
export const BACKENDS: readonly BackendName[] = ['gloo', 'mpi', 'zmq'];

/** Environment variable choosing the backend (`auto` by default); `--ddp_backend` sets it for the workers. */
export const BACKEND_ENV = 'LIGHTCLIP_DDP_BACKEND';

export interface ProcessGroupLike {
  readonly backend: BackendName;
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
  /** What the start-up line prints after `ddp backend: ` (e.g. `gloo (tcp 10.0.0.1, eth0)`). */
  readonly description: string;
  /** Sums (or averages) `data` across ranks in place; every rank passes the same length. Returns `data`. */
  allReduce(data: Float32Array, op?: ReduceOp): Promise<Float32Array>;
  /** All-reduces many arrays in place, packed into buckets of at most `bucketCapMb`. */
  allReduceMany(arrays: readonly Float32Array[], op?: ReduceOp, options?: { bucketCapMb?: number }): Promise<void>;
  /** `src`'s value on every rank (a Float32Array in place, anything else as JSON). */
  broadcast<T>(value: T, src?: number): Promise<T>;
  /** Every rank's array, indexed by rank (lengths may differ). */
  allGather(data: Float32Array): Promise<Float32Array[]>;
  /** Every rank's JSON value, indexed by rank. */
  allGatherObject<T>(value: T): Promise<T[]>;
  /** Returns once every rank reached a barrier of the same name. */
  barrier(name?: string): Promise<void>;
  /** Leaves the group cleanly (after the last collective). */
  close(): Promise<void>;
  /** Leaves the group after a failure: at once, nothing more sent. */
  abort(): Promise<void>;
}

/** Options every backend's `connect` takes. */
export interface GroupOptions {
  rank: number;
  worldSize: number;
  /** Host name or IP of rank 0 (MASTER_ADDR). */
  masterAddr: string;
  /** Rank 0's rendezvous port (MASTER_PORT). */
  masterPort: number;
  /** Collective timeout in ms (default LIGHTCLIP_DDP_TIMEOUT seconds, else 300 s). */
  timeoutMs?: number;
  /** Address this rank binds on (default LIGHTCLIP_DDP_HOST, else the interface that routes to MASTER_ADDR). */
  host?: string;
  /** `file:///shared/dir` to meet through a shared filesystem instead of MASTER_ADDR:MASTER_PORT (Gloo only). */
  initMethod?: string;
  env?: Env;
}

/** Bucket size of `allReduceMany` (PyTorch DDP's `bucket_cap_mb` default). */
export const DEFAULT_BUCKET_CAP_MB = 25;

/** Groups consecutive arrays into buckets of at most `cap` elements; an array ≥ cap gets its own. */
export function planBuckets(lengths: readonly number[], cap: number): number[][] {
  const buckets: number[][] = [];
  let current: number[] = [];
  let size = 0;
  lengths.forEach((len, i) => {
    if (len >= cap) {
      if (current.length) buckets.push(current);
      buckets.push([i]);
      current = [];
      size = 0;
      return;
    }
    if (size + len > cap && current.length) {
      buckets.push(current);
      current = [];
      size = 0;
    }
    current.push(i);
    size += len;
  });
  if (current.length) buckets.push(current);
  return buckets;
}

/**
 * `allReduceMany` for any backend: packs consecutive small arrays into buckets (a few large
 * messages instead of one per parameter, as PyTorch DDP's gradient buckets); an array larger
 * than a bucket is reduced on its own, in place.
 */
export async function allReduceBucketed(
  allReduce: (data: Float32Array, op: ReduceOp) => Promise<Float32Array>,
  arrays: readonly Float32Array[],
  op: ReduceOp,
  bucketCapMb: number = DEFAULT_BUCKET_CAP_MB,
): Promise<void> {
  if (!(bucketCapMb > 0)) throw new MisconfigurationError(`\`bucketCapMb\` must be > 0, got ${showValue(bucketCapMb)}.`);
  const cap = Math.max(1, Math.floor((bucketCapMb * 1024 * 1024) / 4));
  for (const bucket of planBuckets(arrays.map((a) => a.length), cap)) {
    if (bucket.length === 1 && arrays[bucket[0]!]!.length >= cap) {
      await allReduce(arrays[bucket[0]!]!, op);
      continue;
    }
    const flat = new Float32Array(bucket.reduce((s, i) => s + arrays[i]!.length, 0));
    let off = 0;
    for (const i of bucket) {
      flat.set(arrays[i]!, off);
      off += arrays[i]!.length;
    }
    await allReduce(flat, op);
    off = 0;
    for (const i of bucket) {
      arrays[i]!.set(flat.subarray(off, off + arrays[i]!.length));
      off += arrays[i]!.length;
    }
  }
}

/** Checks rank / world size / port, naming the variable. */
export function checkGroupOptions(o: GroupOptions): void {
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new MisconfigurationError(`\`WORLD_SIZE\` must be an integer ≥ 1, got ${showValue(o.worldSize)}.`);
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
    throw new MisconfigurationError(`\`RANK\` must be an integer in [0, ${o.worldSize - 1}] for WORLD_SIZE=${o.worldSize}, got ${showValue(o.rank)}.`);
  }
  if (o.worldSize > 1 && !o.initMethod && (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535)) {
    throw new MisconfigurationError(`\`MASTER_PORT\` must be an integer in [1, 65535], got ${showValue(o.masterPort)}.`);
  }
}
