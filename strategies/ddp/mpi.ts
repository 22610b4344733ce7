import { MisconfigurationError } from '../../core/errors.js';
import { addonLoadError, loadAddon } from '../../core/native/addon.js';
import type { Env } from './environment.js';
import { DistributedError } from './errors.js';
import { allReduceBucketed, checkGroupOptions, type GroupOptions, type ProcessGroupLike, type ReduceOp } from './group.js';
import { timeoutFromEnv } from './processGroup.js';

/** Environment variable naming the MPI library to dlopen (default libmpi.so.40, Open MPI 4.x). */
export const MPI_LIBRARY_ENV = 'LIGHTCLIP_MPI_LIBRARY';

/** The addon's MPI functions (native/src/mpi_pg.cc). */
interface MpiNative {
  mpiLoad(path: string): string | null;
  mpiInit(): Promise<string>;
  mpiAllReduce(data: Float32Array, divisor: number): Promise<string>;
  mpiBroadcast(data: ArrayBufferView, root: number): Promise<string>;
  mpiAllGatherv(input: Uint8Array, output: Uint8Array, bytesPerRank: Float64Array): Promise<string>;
  mpiBarrier(): Promise<string>;
  mpiFinalizeSync(waitMs: number): boolean;
  mpiAbandon(): void;
}

/** True when mpirun / `srun --mpi=pmix` started this process (Open MPI's or PMIx's rank variables). */
export function mpiLaunched(env: Env = process.env): boolean {
  return env.OMPI_COMM_WORLD_RANK !== undefined || env.PMIX_RANK !== undefined;
}

let loaded: { ok: true; n: MpiNative } | { ok: false; reason: string } | null = null;

/** Whether Open MPI can be loaded here (dlopen of libmpi.so.40; nothing is initialised). */
export function mpiStatus(env: Env = process.env): { available: true } | { available: false; reason: string } {
  if (!loaded) {
    const addon = loadAddon() as unknown as Partial<MpiNative> | null;
    if (!addon) loaded = { ok: false, reason: `the native addon is not loaded (${addonLoadError() ?? 'unknown reason'})` };
    else if (typeof addon.mpiLoad !== 'function') loaded = { ok: false, reason: 'the native addon predates MPI support (npm run build:native)' };
    else {
      const lib = env[MPI_LIBRARY_ENV] ?? 'libmpi.so.40';
      const err = addon.mpiLoad(lib);
      loaded = err === null ? { ok: true, n: addon as MpiNative } : { ok: false, reason: `${lib} could not be loaded (${err}); apt-get install openmpi-bin libopenmpi-dev` };
    }
  }
  return loaded.ok ? { available: true } : { available: false, reason: loaded.reason };
}

let initialised: Promise<{ rank: number; size: number; version: string }> | null = null;

/**
 * A process group on Open MPI (Horovod's transport): ranks come from mpirun or
 * `srun --mpi=pmix`, not from MASTER_ADDR/MASTER_PORT. MPI is initialised once per process
 * on the addon's communication thread, with Open MPI's ring all-reduce selected, and
 * finalised when the process exits.
 *
 * Limits (MPI's, documented): a killed peer aborts the whole job through mpirun (which
 * names the rank); a hung peer cannot be interrupted — after LIGHTCLIP_DDP_TIMEOUT the
 * collective rejects, but MPI cannot say which rank hangs, and the process must exit.
 */
export class MpiProcessGroup implements ProcessGroupLike {
  readonly backend = 'mpi' as const;
  private broken: DistributedError | null = null;
  private seq = 0;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly timeoutMs: number,
    readonly description: string,
    private readonly n: MpiNative,
  ) {}

  /**
   * Initialises MPI (once per process) and checks that its rank and size agree with the
   * cluster environment's.
   * @throws MisconfigurationError when Open MPI is missing, the process was not started by mpirun, or the ranks disagree.
   */
  static async connect(o: GroupOptions): Promise<MpiProcessGroup> {
    checkGroupOptions({ ...o, masterPort: o.masterPort || 1 });
    const env = o.env ?? process.env;
    const s = mpiStatus(env);
    if (!s.available) throw new MisconfigurationError(`\`--ddp_backend mpi\`: Open MPI is not available: ${s.reason}.`);
    if (!mpiLaunched(env)) throw new MisconfigurationError('`--ddp_backend mpi` needs the processes to be started by `mpirun` or `srun --mpi=pmix`: MPI_Init without them can abort the process.');
    const n = (loaded as { ok: true; n: MpiNative }).n;
    initialised ??= n.mpiInit().then((r) => {
      // Finalise at exit, or mpirun reports the process as failed.
      process.once('exit', () => n.mpiFinalizeSync(2000));
      const [rank, size, ...version] = r.split(' ');
      return { rank: Number(rank), size: Number(size), version: version.join(' ') };
    });
    const w = await initialised;
    if (w.rank !== o.rank || w.size !== o.worldSize) {
      throw new MisconfigurationError(`MPI says this is rank ${w.rank} of ${w.size}, but the environment says rank ${o.rank} of ${o.worldSize}: run under mpirun without setting RANK/WORLD_SIZE yourself.`);
    }
    const pg = new MpiProcessGroup(w.rank, w.size, o.timeoutMs ?? timeoutFromEnv(env), `mpi (${w.version}, ring all-reduce)`, n);
    await pg.barrier('connect');
    return pg;
  }

  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    if (op !== 'sum' && op !== 'mean') throw new MisconfigurationError(`\`op\` must be 'sum' or 'mean', got ${JSON.stringify(op)}.`);
    if (this.worldSize === 1 || data.length === 0) return data;
    await this.run(`allReduce(${data.length} floats)`, () => this.n.mpiAllReduce(data, op === 'mean' ? this.worldSize : 1));
    return data;
  }

  allReduceMany(arrays: readonly Float32Array[], op: ReduceOp = 'sum', options: { bucketCapMb?: number } = {}): Promise<void> {
    return allReduceBucketed((d, o) => this.allReduce(d, o), arrays, op, options.bucketCapMb);
  }

  async broadcast<T>(value: T, src = 0): Promise<T> {
    if (!Number.isInteger(src) || src < 0 || src >= this.worldSize) throw new MisconfigurationError(`\`src\` must be a rank in [0, ${this.worldSize - 1}], got ${JSON.stringify(src)}.`);
    if (this.worldSize === 1) return value;
    if (value instanceof Float32Array) {
      await this.run(`broadcast(${value.length} floats)`, () => this.n.mpiBroadcast(value, src));
      return value;
    }
    return this.run('broadcast(JSON)', async () => {
      const body = this.rank === src ? Buffer.from(JSON.stringify(value === undefined ? null : value)) : null;
      const len = Float64Array.of(body ? body.length : 0);
      await this.n.mpiBroadcast(len, src);
      const bytes = body ?? Buffer.alloc(len[0]!);
      await this.n.mpiBroadcast(bytes, src);
      return (this.rank === src ? value : JSON.parse(bytes.toString('utf8'))) as T;
    });
  }

  async allGather(data: Float32Array): Promise<Float32Array[]> {
    if (this.worldSize === 1) return [data];
    return this.run(`allGather(${data.length} floats)`, async () => {
      const parts = await this.gatherBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return parts.map((b, r) => (r === this.rank ? data : new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)));
    });
  }

  async allGatherObject<T>(value: T): Promise<T[]> {
    if (this.worldSize === 1) return [value];
    return this.run('allGather(JSON)', async () => {
      const parts = await this.gatherBytes(Buffer.from(JSON.stringify(value === undefined ? null : value)));
      return parts.map((p, r) => (r === this.rank ? value : (JSON.parse(Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8')) as T)));
    });
  }

  async barrier(name = 'barrier'): Promise<void> {
    if (this.worldSize === 1) return;
    await this.run(`barrier '${name}'`, () => this.n.mpiBarrier());
  }

  /** MPI stays initialised for the next group of this process; it is finalised at exit. */
  async close(): Promise<void> {}

  async abort(): Promise<void> {}

  private async gatherBytes(mine: Uint8Array): Promise<Uint8Array[]> {
    const N = this.worldSize;
    const lens = new Float64Array(N);
    await this.n.mpiAllGatherv(new Uint8Array(Float64Array.of(mine.length).buffer), new Uint8Array(lens.buffer), new Float64Array(N).fill(8));
    const out = new Uint8Array(lens.reduce((a, b) => a + b, 0));
    await this.n.mpiAllGatherv(mine.slice(), out, lens);
    const parts: Uint8Array[] = [];
    for (let r = 0, off = 0; r < N; off += lens[r]!, r++) parts.push(out.slice(off, off + lens[r]!));
    return parts;
  }

  private async run<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.broken) throw this.broken;
    const label = `${what} #${++this.seq}`;
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new DistributedError(
            `rank ${this.rank}: ${label} timed out after ${this.timeoutMs / 1000} s under MPI, which cannot tell which rank hangs; the collective cannot be cancelled, so this process must exit (mpirun then stops the job).`,
          ),
        );
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([body(), timeout]);
    } catch (err) {
      this.broken = err instanceof DistributedError ? err : new DistributedError(`rank ${this.rank}: ${label} failed: ${(err as Error).message}`);
      this.n.mpiAbandon();
      throw this.broken;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
