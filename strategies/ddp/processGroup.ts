import { MisconfigurationError, showValue } from '../../core/errors.js';
import { DistributedError } from './errors.js';
import { PeerMesh } from './mesh.js';
import { Kind, Op, type Incoming } from './wire.js';
import { rendezvous, resolveHost, routeAddress } from './rendezvous.js';
import { allReduceBucketed, DEFAULT_BUCKET_CAP_MB, planBuckets, type ProcessGroupLike, type ReduceOp } from './group.js';

export { DEFAULT_BUCKET_CAP_MB, planBuckets, type ReduceOp };

/** Environment variable holding the collective timeout in seconds. */
export const TIMEOUT_ENV = 'LIGHTCLIP_DDP_TIMEOUT';
/**
 * Default collective timeout. torch.distributed waits 30 min; 5 min still covers rank 0
 * writing a large checkpoint while the others wait at the barrier that follows, and turns a
 * real hang into an error much sooner.
 */
export const DEFAULT_TIMEOUT_SECONDS = 300;
/** Environment variable overriding the address this rank's peer socket binds on. */
export const HOST_ENV = 'LIGHTCLIP_DDP_HOST';

/** Floats per message (4 MB): big enough to amortise per-message costs, small enough to pipeline. */
const PIECE = 1 << 20;
/** Tag = step × TAG_STRIDE + piece: up to 65 536 pieces (64 Gi floats) per ring segment. */
const TAG_STRIDE = 1 << 16;

/** Options of {@link ProcessGroup.connect}. */
export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Host name or IP of rank 0 (MASTER_ADDR). */
  masterAddr: string;
  /** Port rank 0 listens on for the rendezvous (MASTER_PORT). */
  masterPort: number;
  /** Collective timeout in ms (default: LIGHTCLIP_DDP_TIMEOUT seconds, else 300 s). */
  timeoutMs?: number;
  /** Address this rank's peer socket binds on (default: LIGHTCLIP_DDP_HOST, else the interface that routes to MASTER_ADDR). */
  host?: string;
  /** Environment to read LIGHTCLIP_DDP_TIMEOUT / LIGHTCLIP_DDP_HOST from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads the collective timeout from `LIGHTCLIP_DDP_TIMEOUT` (seconds).
 * @throws MisconfigurationError when it is not a positive number.
 */
export function timeoutFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = env[TIMEOUT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_TIMEOUT_SECONDS * 1000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new MisconfigurationError(`\`${TIMEOUT_ENV}\` must be a number of seconds > 0, got ${showValue(raw)}.`);
  return s * 1000;
}

/**
 * A zeromq process group: rendezvous at rank 0, then a mesh of peer sockets (see
 * `mesh.ts`). Collectives must be called by every rank in the same order; each gets a
 * sequence number, so early messages of the next collective never mix with this one, and
 * each has a deadline (`timeoutMs`) whose error names the rank(s) that never arrived. After
 * any failure the group is broken and every later collective rethrows the first error.
 * With world size 1 every collective is the identity and no socket is opened.
 *
 * @example
 * ```ts
 * const pg = await ProcessGroup.connect({ rank, worldSize, masterAddr: '127.0.0.1', masterPort: 29500 });
 * await pg.allReduce(grads, 'mean');
 * await pg.close();
 * ```
 */
export class ProcessGroup implements ProcessGroupLike {
  readonly backend = 'zmq' as const;
  private seq = 0;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly timeoutMs: number,
    private readonly mesh: PeerMesh | null,
  ) {}

  get description(): string {
    return this.mesh ? `zmq (tcp ${this.mesh.address})` : 'zmq (world size 1: no communication)';
  }

  /**
   * Joins the group: rank 0 listens at `masterAddr:masterPort`, the others connect there,
   * addresses are exchanged, every rank connects to every other, and a barrier proves
   * the mesh works.
   * @throws MisconfigurationError for invalid ranks, addresses or timeout.
   * @throws DistributedError when a rank does not show up within the timeout.
   */
  static async connect(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const env = o.env ?? process.env;
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new MisconfigurationError(`\`WORLD_SIZE\` must be an integer ≥ 1, got ${showValue(o.worldSize)}.`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
      throw new MisconfigurationError(`\`RANK\` must be an integer in [0, ${o.worldSize - 1}] for WORLD_SIZE=${o.worldSize}, got ${showValue(o.rank)}.`);
    }
    const timeoutMs = o.timeoutMs ?? timeoutFromEnv(env);
    if (o.worldSize === 1) return new ProcessGroup(0, 1, timeoutMs, null);
    if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) {
      throw new MisconfigurationError(`\`MASTER_PORT\` must be an integer in [1, 65535], got ${showValue(o.masterPort)}.`);
    }
    const masterIp = await resolveHost(o.masterAddr);
    const host = o.host ?? env[HOST_ENV] ?? (await routeAddress(masterIp));
    const mesh = await PeerMesh.bind({ rank: o.rank, worldSize: o.worldSize, host, timeoutMs });
    try {
      const addresses = await rendezvous({ rank: o.rank, worldSize: o.worldSize, masterIp, masterPort: o.masterPort, myAddress: mesh.address, timeoutMs });
      mesh.connect(addresses);
      const pg = new ProcessGroup(o.rank, o.worldSize, timeoutMs, mesh);
      await pg.barrier('connect');
      return pg;
    } catch (err) {
      await mesh.close(false);
      throw err;
    }
  }

  /**
   * Sums (or averages) `data` across ranks, in place: a ring reduce-scatter then a ring
   * all-gather (each rank sends 2·(N−1)/N of the array, whatever N), in messages of at most
   * 4 MB so receiving overlaps sending. Every rank must pass an array of the same length.
   * Returns `data`.
   */
  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    if (op !== 'sum' && op !== 'mean') throw new MisconfigurationError(`\`op\` must be 'sum' or 'mean', got ${showValue(op)}.`);
    const { seq, deadline, label, mesh } = this.begin(`allReduce(${data.length} floats)`);
    if (!mesh || data.length === 0) return data;
    const N = this.worldSize;
    const n = data.length;
    const right = (this.rank + 1) % N;
    const left = (this.rank + N - 1) % N;
    const mod = (i: number): number => ((i % N) + N) % N;
    const bounds = (i: number): [number, number] => [Math.floor((i * n) / N), Math.floor(((i + 1) * n) / N)];
    for (let step = 0; step < 2 * (N - 1); step++) {
      // Reduce-scatter: after N−1 steps rank r holds the full sum of segment r+1;
      // all-gather: N−1 more steps pass the finished segments around the ring.
      const reducing = step < N - 1;
      const s = reducing ? step : step - (N - 1);
      const [a, b] = bounds(reducing ? mod(this.rank - s) : mod(this.rank + 1 - s));
      for (let off = a, p = 0; off < b; off += PIECE, p++) {
        mesh.send(right, { kind: Kind.Data, op: Op.AllReduce, seq, tag: step * TAG_STRIDE + p, total: n }, copyBytes(data, off, Math.min(b, off + PIECE)));
      }
      const [c, d] = bounds(reducing ? mod(this.rank - s - 1) : mod(this.rank - s));
      for (let off = c, p = 0; off < d; off += PIECE, p++) {
        const len = Math.min(d, off + PIECE) - off;
        const v = this.floats(await mesh.recv(left, Op.AllReduce, seq, step * TAG_STRIDE + p, deadline, label), n, len, label);
        if (reducing) for (let i = 0; i < len; i++) data[off + i] += v[i]!;
        else data.set(v, off);
      }
    }
    // Divide at the end (not each input by N first): exact whenever the sum is.
    if (op === 'mean') for (let i = 0; i < n; i++) data[i] = data[i]! / N;
    mesh.throwIfBroken();
    return data;
  }

  /**
   * All-reduces many arrays in place, packing consecutive small ones into buckets of at most
   * `bucketCapMb` (PyTorch DDP's gradient buckets: a few large messages instead of one per
   * parameter); an array larger than a bucket is reduced on its own. Every rank must pass
   * the same list of lengths.
   */
  allReduceMany(arrays: readonly Float32Array[], op: ReduceOp = 'sum', options: { bucketCapMb?: number } = {}): Promise<void> {
    return allReduceBucketed((d, o) => this.allReduce(d, o), arrays, op, options.bucketCapMb);
  }

  /**
   * Sends `src`'s value to every rank. A Float32Array is copied in place into the other
   * ranks' arrays (which must have the same length) and returned; any other value travels
   * as JSON and the other ranks' argument is ignored (pass `null`).
   */
  async broadcast<T>(value: T, src = 0): Promise<T> {
    this.checkRank(src, 'src');
    if (value instanceof Float32Array) return (await this.broadcastFloats(value, src)) as T;
    const { seq, deadline, label, mesh } = this.begin('broadcast(JSON)');
    if (!mesh) return value;
    if (this.rank === src) {
      const body = Buffer.from(JSON.stringify(value === undefined ? null : value));
      for (let p = 0; p < this.worldSize; p++) if (p !== src) mesh.send(p, { kind: Kind.Data, op: Op.BroadcastJson, seq, tag: 0, total: body.length }, body);
      return value;
    }
    const msg = await mesh.recv(src, Op.BroadcastJson, seq, 0, deadline, label);
    return JSON.parse(msg.payload.toString('utf8')) as T;
  }

  /**
   * Every rank's array, indexed by rank (entry `rank` is `data` itself). Lengths may differ
   * between ranks. Each rank sends its array directly to every other rank.
   */
  async allGather(data: Float32Array): Promise<Float32Array[]> {
    const { seq, deadline, label, mesh } = this.begin(`allGather(${data.length} floats)`);
    if (!mesh) return [data];
    const n = data.length;
    const pieces = Math.max(1, Math.ceil(n / PIECE));
    for (let p = 0; p < pieces; p++) {
      const bytes = copyBytes(data, p * PIECE, Math.min(n, (p + 1) * PIECE));
      for (let dst = 0; dst < this.worldSize; dst++) if (dst !== this.rank) mesh.send(dst, { kind: Kind.Data, op: Op.AllGather, seq, tag: p, total: n }, bytes);
    }
    const others = this.others();
    const firsts = await mesh.recvMany(others, Op.AllGather, seq, 0, deadline, label);
    const out: Float32Array[] = new Array<Float32Array>(this.worldSize);
    out[this.rank] = data;
    for (let k = 0; k < others.length; k++) {
      const src = others[k]!;
      const total = firsts[k]!.header.total;
      const arr = new Float32Array(total);
      for (let p = 0, off = 0; off < total || p === 0; p++, off += PIECE) {
        const len = Math.min(total, off + PIECE) - off;
        const msg = p === 0 ? firsts[k]! : await mesh.recv(src, Op.AllGather, seq, p, deadline, label);
        arr.set(this.floats(msg, total, len, label), off);
      }
      out[src] = arr;
    }
    return out;
  }

  /**
   * Point-to-point exchange, called by every rank as one collective: this rank sends each
   * `sends[k].data` to `sends[k].to` and receives one array from each rank of `recvFrom`,
   * returned in that order. Messages between two ranks match in the order they are listed
   * (a rank may send to, and receive from, the same peer more than once). A rank with
   * nothing to send or receive passes empty lists. (open_clip's neighbour exchange:
   * `P2POp` isend/irecv pairs.)
   */
  async sendRecv(sends: ReadonlyArray<{ to: number; data: Float32Array }>, recvFrom: readonly number[]): Promise<Float32Array[]> {
    sends.forEach((s) => this.checkRank(s.to, 'to'));
    recvFrom.forEach((r) => this.checkRank(r, 'recvFrom'));
    const { seq, deadline, label, mesh } = this.begin(`sendRecv(${sends.length} sends, ${recvFrom.length} receives)`);
    if (!mesh) return sends.filter((s) => s.to === this.rank).map((s) => s.data);
    const sentTo = new Map<number, number>();
    for (const { to, data } of sends) {
      const ordinal = sentTo.get(to) ?? 0;
      sentTo.set(to, ordinal + 1);
      if (to === this.rank) continue;
      mesh.send(to, { kind: Kind.Data, op: Op.SendRecv, seq, tag: ordinal, total: data.length }, copyBytes(data, 0, data.length));
    }
    const got = new Map<number, number>();
    const out: Float32Array[] = [];
    let self = 0;
    for (const src of recvFrom) {
      const ordinal = got.get(src) ?? 0;
      got.set(src, ordinal + 1);
      if (src === this.rank) {
        out.push(sends.filter((s) => s.to === this.rank)[self++]!.data);
        continue;
      }
      const msg = await mesh.recv(src, Op.SendRecv, seq, ordinal, deadline, label);
      const n = msg.header.total;
      out.push(Float32Array.from(this.floats(msg, n, n, label)));
    }
    return out;
  }

  /** Every rank's JSON value, indexed by rank. */
  async allGatherObject<T>(value: T): Promise<T[]> {
    const { seq, deadline, label, mesh } = this.begin('allGather(JSON)');
    if (!mesh) return [value];
    const body = Buffer.from(JSON.stringify(value === undefined ? null : value));
    for (const dst of this.others()) mesh.send(dst, { kind: Kind.Data, op: Op.AllGatherJson, seq, tag: 0, total: body.length }, body);
    const msgs = await mesh.recvMany(this.others(), Op.AllGatherJson, seq, 0, deadline, label);
    const out: T[] = new Array<T>(this.worldSize);
    out[this.rank] = value;
    msgs.forEach((m) => (out[m.header.src] = JSON.parse(m.payload.toString('utf8')) as T));
    return out;
  }

  /**
   * Returns once every rank has reached a barrier of the same `name` (every rank tells every
   * other, so a timeout names exactly the ranks that did not arrive).
   */
  async barrier(name = 'barrier'): Promise<void> {
    const { seq, deadline, label, mesh } = this.begin(`barrier '${name}'`);
    if (!mesh) return;
    const body = Buffer.from(name);
    for (const dst of this.others()) mesh.send(dst, { kind: Kind.Data, op: Op.Barrier, seq, tag: 0, total: body.length }, body);
    const msgs = await mesh.recvMany(this.others(), Op.Barrier, seq, 0, deadline, label);
    for (const m of msgs) {
      const theirs = m.payload.toString('utf8');
      if (theirs !== name) {
        throw mesh.abort(new DistributedError(`rank ${this.rank}: ${label}: rank ${m.header.src} is at barrier '${theirs}' instead: the ranks took different paths through the program.`, [m.header.src]));
      }
    }
  }

  /** Leaves the group: says goodbye to every rank (so they know nothing more will come) and closes the sockets. */
  async close(): Promise<void> {
    await this.mesh?.close(true);
  }

  /** Leaves the group after a failure: no goodbye, pending messages dropped. */
  async abort(): Promise<void> {
    await this.mesh?.close(false);
  }

  // ---- internals ----

  private begin(what: string): { seq: number; deadline: number; label: string; mesh: PeerMesh | null } {
    const seq = (this.seq = (this.seq + 1) >>> 0);
    this.mesh?.throwIfBroken();
    return { seq, deadline: Date.now() + this.timeoutMs, label: `${what} #${seq}`, mesh: this.mesh };
  }

  private others(): number[] {
    return Array.from({ length: this.worldSize }, (_, i) => i).filter((i) => i !== this.rank);
  }

  private checkRank(r: number, name: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.worldSize) throw new MisconfigurationError(`\`${name}\` must be a rank in [0, ${this.worldSize - 1}], got ${showValue(r)}.`);
  }

  private async broadcastFloats(data: Float32Array, src: number): Promise<Float32Array> {
    const { seq, deadline, label, mesh } = this.begin(`broadcast(${data.length} floats)`);
    if (!mesh) return data;
    const n = data.length;
    const pieces = Math.max(1, Math.ceil(n / PIECE));
    for (let p = 0; p < pieces; p++) {
      const off = p * PIECE;
      const len = Math.min(n, off + PIECE) - off;
      if (this.rank === src) {
        const bytes = copyBytes(data, off, off + len);
        for (const dst of this.others()) mesh.send(dst, { kind: Kind.Data, op: Op.Broadcast, seq, tag: p, total: n }, bytes);
      } else {
        data.set(this.floats(await mesh.recv(src, Op.Broadcast, seq, p, deadline, label), n, len, label), off);
      }
    }
    return data;
  }

  /** The payload as floats, after checking the sender's array length matches ours. */
  private floats(msg: Incoming, total: number, len: number, label: string): Float32Array {
    const src = msg.header.src;
    if (msg.header.total !== total || msg.payload.byteLength !== len * 4) {
      throw this.mesh!.abort(
        new DistributedError(`rank ${this.rank}: ${label}: rank ${src} passed an array of ${msg.header.total} floats where this rank expected ${total}: every rank must pass arrays of the same length.`, [src]),
      );
    }
    const b = msg.payload;
    if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, len);
    // Small messages are copied into Node's buffer pool at any offset: realign.
    const out = new Float32Array(len);
    new Uint8Array(out.buffer).set(b);
    return out;
  }
}

/** A private copy of `a[start, end)` as bytes: zeromq sends buffers without copying, and `a` changes later. */
function copyBytes(a: Float32Array, start: number, end: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + start * 4, (end - start) * 4).slice();
}
