import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MisconfigurationError } from '../../core/errors.js';
import { addonLoadError, loadAddon } from '../../core/native/addon.js';
import { DistributedError, describeRanks } from './errors.js';
import { allReduceBucketed, checkGroupOptions, type GroupOptions, type ProcessGroupLike, type ReduceOp } from './group.js';
import { HOST_ENV, timeoutFromEnv } from './processGroup.js';
import { resolveHost, routeAddress } from './rendezvous.js';
import { JOINED_KEY, StoreClient, StoreServer, type Notice } from './store.js';

/** PyTorch's variable naming the network interface(s) Gloo uses (the first one is used here). */
export const GLOO_IFNAME_ENV = 'GLOO_SOCKET_IFNAME';
/** Environment variable choosing the all-reduce algorithm: auto (default), ring, bcube, ring_chunked, halving_doubling. */
export const GLOO_ALGORITHM_ENV = 'LIGHTCLIP_GLOO_ALGORITHM';

/** The addon's Gloo functions (native/src/gloo_pg.cc), present when Gloo was found at build time. */
interface GlooNative {
  glooVersion: string;
  glooCreate(): unknown;
  glooConnect(h: unknown, rank: number, size: number, hostname: string, iface: string, kind: 'tcp' | 'file', where: string, port: number, prefix: string, timeoutMs: number): Promise<string>;
  glooAllReduce(h: unknown, data: Float32Array, algorithm: number, tag: number, timeoutMs: number, divisor: number): Promise<string>;
  glooBroadcast(h: unknown, data: ArrayBufferView, root: number, tag: number, timeoutMs: number): Promise<string>;
  glooAllGatherv(h: unknown, input: Uint8Array, output: Uint8Array, bytesPerRank: Float64Array, tag: number, timeoutMs: number): Promise<string>;
  glooReduceScatter(h: unknown, data: Float32Array, counts: Int32Array, divisor: number): Promise<string>;
  glooBarrier(h: unknown, tag: number, timeoutMs: number): Promise<string>;
  glooAbandon(h: unknown): void;
  glooClose(h: unknown): boolean;
}

/** All-reduce algorithms (codes shared with gloo_pg.cc). */
export const GLOO_ALGORITHMS = { ring: 0, bcube: 1, ring_chunked: 2, halving_doubling: 3 } as const;
export type GlooAlgorithm = keyof typeof GLOO_ALGORITHMS | 'auto';


/** Gloo's functions, or why they are missing. */
export function glooStatus(): { available: true; version: string } | { available: false; reason: string } {
  const addon = loadAddon() as unknown as Partial<GlooNative> | null;
  if (!addon) return { available: false, reason: `the native addon is not loaded (${addonLoadError() ?? 'unknown reason'})` };
  if (typeof addon.glooCreate !== 'function') return { available: false, reason: 'the native addon was built without Gloo (apt-get install libgloo-dev, then npm run build:native)' };
  return { available: true, version: addon.glooVersion ?? '?' };
}

function native(): GlooNative {
  const s = glooStatus();
  if (!s.available) throw new MisconfigurationError(`\`--ddp_backend gloo\`: Gloo is not available: ${s.reason}. Use --ddp_backend zmq (or auto).`);
  return loadAddon() as unknown as GlooNative;
}

let generation = 0;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where this rank's Gloo device binds: an interface (GLOO_SOCKET_IFNAME) or an address resolved here. */
async function pickTransport(o: GroupOptions, masterIp: string | null): Promise<{ hostname: string; iface: string; label: string }> {
  const env = o.env ?? process.env;
  const ifnames = env[GLOO_IFNAME_ENV];
  if (ifnames) {
    const iface = ifnames.split(',')[0]!.trim();
    const have = os.networkInterfaces();
    if (!have[iface]) throw new MisconfigurationError(`\`${GLOO_IFNAME_ENV}=${ifnames}\`: this machine has no interface ${iface} (it has ${Object.keys(have).join(', ')}).`);
    const v4 = have[iface]!.find((a) => a.family === 'IPv4') ?? have[iface]![0];
    return { hostname: '', iface, label: `${v4?.address ?? '?'} on ${iface}` };
  }
  const explicit = o.host ?? env[HOST_ENV];
  // Resolve here: a name Gloo cannot resolve aborts its device creation with an unhelpful message.
  const ip = explicit ? await resolveHost(explicit, o.host ? 'host' : HOST_ENV) : masterIp ? await routeAddress(masterIp) : '127.0.0.1';
  const iface = Object.entries(os.networkInterfaces()).find(([, as]) => as?.some((a) => a.address === ip))?.[0];
  return { hostname: ip, iface: '', label: iface ? `${ip} on ${iface}` : ip };
}

/** The directory of a `file://` init method. */
function fileInitDir(init: string): string {
  if (!init.startsWith('file://')) throw new MisconfigurationError(`\`--ddp_init\` must be file:///path/on/a/shared/filesystem, got ${JSON.stringify(init)} (leave it unset to meet at MASTER_ADDR:MASTER_PORT).`);
  return fileURLToPath(init);
}

/**
 * A process group on Gloo (the collective library PyTorch's CPU DDP runs on): a full mesh of
 * TCP pairs built by Gloo's `connectFullMesh` through lightclip's store (`store.ts`) or a
 * shared directory (`file://`). Collectives run on the addon's communication thread; this
 * class adds what Gloo lacks: timeouts and failures that name the rank (through the store's
 * notices), checks that every rank called the same collective, and JSON helpers.
 *
 * @example
 * ```ts
 * const pg = await GlooProcessGroup.connect({ rank, worldSize, masterAddr: '127.0.0.1', masterPort: 29500 });
 * await pg.allReduce(grads, 'mean');
 * await pg.close();
 * ```
 */
export class GlooProcessGroup implements ProcessGroupLike {
  readonly backend = 'gloo' as const;
  private seq = 0;
  private broken: DistributedError | null = null;
  private breakCurrent: ((e: DistributedError) => void) | null = null;
  private current: { seq: number; label: string } | null = null;
  private readonly left = new Map<number, number>();
  private readonly algorithm: GlooAlgorithm;
  private closed = false;
  private diagnosing = false;
  private timedOut = false;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly timeoutMs: number,
    readonly description: string,
    private readonly n: GlooNative | null,
    private readonly handle: unknown,
    private readonly store: StoreClient | null,
    private readonly server: StoreServer | null,
    env: NodeJS.ProcessEnv | Readonly<Record<string, string | undefined>>,
  ) {
    const alg = (env[GLOO_ALGORITHM_ENV] ?? 'auto') as GlooAlgorithm;
    if (alg !== 'auto' && !(alg in GLOO_ALGORITHMS)) {
      throw new MisconfigurationError(`\`${GLOO_ALGORITHM_ENV}\` must be auto, ${Object.keys(GLOO_ALGORITHMS).join(', ')}; got ${JSON.stringify(alg)}.`);
    }
    this.algorithm = alg;
    if (store) {
      store.onNotice = (notice) => this.onNotice(notice);
      store.onLost = () => this.fail(new DistributedError(`rank 0 (which hosts the store) disconnected without saying goodbye: its process exited, crashed or was killed.`, [0]));
    }
  }

  /**
   * Joins the group: rank 0 serves the store at MASTER_ADDR:MASTER_PORT (or everyone uses
   * the `file://` directory), every rank says hello and waits for all the others (a
   * rendezvous timeout names the ranks that never came), Gloo connects the mesh, and a
   * barrier proves it works.
   * @throws MisconfigurationError for bad ranks, addresses, interfaces, or Gloo missing.
   * @throws DistributedError when a rank does not show up within the timeout.
   */
  static async connect(o: GroupOptions): Promise<GlooProcessGroup> {
    checkGroupOptions(o);
    const env = o.env ?? process.env;
    const timeoutMs = o.timeoutMs ?? timeoutFromEnv(env);
    if (o.worldSize === 1) return new GlooProcessGroup(0, 1, timeoutMs, 'gloo (world size 1: no communication)', null, null, null, null, env);
    const n = native();
    const gen = ++generation;
    const fileDir = o.initMethod ? fileInitDir(o.initMethod) : null;
    const masterIp = fileDir ? null : await resolveHost(o.masterAddr);
    const transport = await pickTransport(o, masterIp);
    const deadline = Date.now() + timeoutMs;
    let server: StoreServer | null = null;
    let store: StoreClient | null = null;
    const handle = n.glooCreate();
    try {
      let prefix: string;
      if (fileDir) {
        const runId = (env.LIGHTCLIP_DDP_RUN_ID ?? env.TORCHELASTIC_RUN_ID ?? env.SLURM_JOB_ID ?? 'run').replace(/[^\w.-]/g, '_');
        prefix = `lightclip-${runId}-${gen}`;
        await fileRendezvous(path.join(fileDir, prefix), o.rank, o.worldSize, deadline, timeoutMs, o.initMethod!);
      } else {
        prefix = `lightclip/${gen}`;
        if (o.rank === 0) server = await StoreServer.listen(masterIp!, o.masterPort, o.worldSize, Math.min(timeoutMs, 10_000));
        store = await joinStore(masterIp!, o.masterPort, o.rank, o.worldSize, deadline, timeoutMs);
      }
      // Gloo's FileStore names its files by hashing the keys: give it the run's own subdirectory, so rank 0 can remove it.
      const [kind, where] = fileDir ? (['file', path.join(fileDir, prefix)] as const) : (['tcp', masterIp!] as const);
      try {
        await n.glooConnect(handle, o.rank, o.worldSize, transport.hostname, transport.iface, kind, where, o.masterPort || 0, prefix, Math.max(1000, deadline - Date.now()));
      } catch (err) {
        throw new DistributedError(`rank ${o.rank}: Gloo could not connect the ranks (${(err as Error).message}); check that every node can reach the others on ${transport.label} (set GLOO_SOCKET_IFNAME to the right interface).`);
      }
      const description = `gloo ${n.glooVersion} (tcp ${transport.label}, ${fileDir ? `file store ${fileDir}` : `store ${o.masterAddr}:${o.masterPort}`})`;
      const pg = new GlooProcessGroup(o.rank, o.worldSize, timeoutMs, description, n, handle, store, server, env);
      await pg.barrier('connect');
      server?.stopListening();
      if (fileDir && o.rank === 0) await fs.rm(path.join(fileDir, prefix), { recursive: true, force: true });
      return pg;
    } catch (err) {
      n.glooAbandon(handle);
      store?.close();
      if (server) {
        // Tell the ranks that did come why the rendezvous failed before they lose the store.
        server.refuseAll((err as Error).message);
        const s = server;
        setTimeout(() => void s.close(0), 300).unref();
      }
      throw err;
    }
  }

  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    if (op !== 'sum' && op !== 'mean') throw new MisconfigurationError(`\`op\` must be 'sum' or 'mean', got ${JSON.stringify(op)}.`);
    if (this.worldSize === 1) return data;
    await this.run('allReduce', `allReduce(${data.length} floats)`, data.length, undefined, (tag, ms) => {
      if (data.length === 0) return Promise.resolve('');
      return this.n!.glooAllReduce(this.handle, data, this.pickAlgorithm(data.length), tag, ms, op === 'mean' ? this.worldSize : 1);
    });
    return data;
  }

  allReduceMany(arrays: readonly Float32Array[], op: ReduceOp = 'sum', options: { bucketCapMb?: number } = {}): Promise<void> {
    return allReduceBucketed((d, o) => this.allReduce(d, o), arrays, op, options.bucketCapMb);
  }

  async broadcast<T>(value: T, src = 0): Promise<T> {
    this.checkRank(src, 'src');
    if (this.worldSize === 1) return value;
    if (value instanceof Float32Array) {
      await this.run('broadcast(Float32Array)', `broadcast(${value.length} floats)`, value.length, String(src), (tag, ms) =>
        value.length === 0 ? Promise.resolve('') : this.n!.glooBroadcast(this.handle, value, src, tag, ms),
      );
      return value;
    }
    return this.run('broadcast(JSON)', 'broadcast(JSON)', -1, String(src), async (tag, ms) => {
      const body = this.rank === src ? Buffer.from(JSON.stringify(value === undefined ? null : value)) : null;
      const len = Float64Array.of(body ? body.length : 0);
      await this.n!.glooBroadcast(this.handle, len, src, tag, ms);
      const bytes = body ?? Buffer.alloc(len[0]!);
      await this.n!.glooBroadcast(this.handle, bytes, src, tag, ms);
      return (this.rank === src ? value : JSON.parse(bytes.toString('utf8'))) as T;
    });
  }

  async allGather(data: Float32Array): Promise<Float32Array[]> {
    if (this.worldSize === 1) return [data];
    return this.run('allGather(Float32Array)', `allGather(${data.length} floats)`, -1, undefined, async (tag, ms) => {
      const bytes = await this.gatherBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), tag, ms);
      return bytes.map((b, r) => (r === this.rank ? data : new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)));
    });
  }

  async allGatherObject<T>(value: T): Promise<T[]> {
    if (this.worldSize === 1) return [value];
    return this.run('allGather(JSON)', 'allGather(JSON)', -1, undefined, async (tag, ms) => {
      const parts = await this.gatherBytes(Buffer.from(JSON.stringify(value === undefined ? null : value)), tag, ms);
      return parts.map((p, r) => (r === this.rank ? value : (JSON.parse(Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8')) as T)));
    });
  }

  /**
   * Sums `data` across ranks and leaves this rank's block of the result in
   * `data[0, counts[rank])` (Gloo's halving-doubling reduce-scatter); `counts` sum to the length.
   */
  async reduceScatter(data: Float32Array, counts: readonly number[], op: ReduceOp = 'sum'): Promise<Float32Array> {
    if (counts.length !== this.worldSize || counts.reduce((a, b) => a + b, 0) !== data.length) {
      throw new MisconfigurationError(`\`reduceScatter\`: counts must have ${this.worldSize} entries summing to the array length ${data.length}, got [${counts.join(', ')}].`);
    }
    if (this.worldSize === 1) return data;
    await this.run('reduceScatter', `reduceScatter(${data.length} floats)`, data.length, counts.join(','), () =>
      this.n!.glooReduceScatter(this.handle, data, Int32Array.from(counts), op === 'mean' ? this.worldSize : 1),
    );
    return data.subarray(0, counts[this.rank]);
  }

  async barrier(name = 'barrier'): Promise<void> {
    if (this.worldSize === 1) return;
    await this.run('barrier', `barrier '${name}'`, 0, name, (tag, ms) => this.n!.glooBarrier(this.handle, tag, ms));
  }

  /** Says goodbye (so no rank mistakes this one's exit for a crash) and closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.broken) return this.abort();
    this.closed = true;
    if (!this.store) return;
    await this.store.bye(this.seq);
    // Rank 0 serves the store until every rank said goodbye (or died).
    await this.server?.close(this.timeoutMs);
    this.store.close();
    this.n!.glooClose(this.handle);
  }

  /** Leaves at once: the others learn it from the dropped store connection. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.store) return;
    this.n!.glooAbandon(this.handle);
    this.n!.glooClose(this.handle);
    // After a timeout the others may still be asking the store who is to blame: serve them a moment longer.
    if (this.server && this.timedOut) await sleep(Math.min(2500, Math.max(500, this.timeoutMs / 2)));
    this.store.close();
    await this.server?.close(0);
  }

  // ---- internals ----

  private pickAlgorithm(n: number): number {
    // `auto` is Gloo's ring for every size: it takes a per-operation timeout and a tag (so a
    // length mismatch cannot reach Gloo), which the classic ring-chunked and halving-doubling
    // algorithms do not; see the bench for how they compare.
    void n;
    if (this.algorithm !== 'auto') return GLOO_ALGORITHMS[this.algorithm];
    return GLOO_ALGORITHMS.ring;
  }

  private checkRank(r: number, name: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.worldSize) throw new MisconfigurationError(`\`${name}\` must be a rank in [0, ${this.worldSize - 1}], got ${JSON.stringify(r)}.`);
  }

  /** Every rank's bytes: lengths first, then one all-gather-v. */
  private async gatherBytes(mine: Uint8Array, tag: number, ms: number): Promise<Uint8Array[]> {
    const N = this.worldSize;
    const lens = new Float64Array(N);
    await this.n!.glooAllGatherv(this.handle, new Uint8Array(Float64Array.of(mine.length).buffer), new Uint8Array(lens.buffer), new Float64Array(N).fill(8), tag, ms);
    const total = lens.reduce((a, b) => a + b, 0);
    const out = new Uint8Array(total);
    // A private copy of the input: the caller's array must not be read by the other thread after we return.
    await this.n!.glooAllGatherv(this.handle, mine.slice(), out, lens, tag, ms);
    const parts: Uint8Array[] = [];
    let off = 0;
    for (let r = 0; r < N; r++) {
      // Copy each part into its own aligned buffer (Float32Array views need 4-byte alignment).
      parts.push(out.slice(off, off + lens[r]!));
      off += lens[r]!;
    }
    return parts;
  }

  /**
   * Runs one collective: reports it to the store (consistency check), then waits for the
   * native operation, the timeout, or a failure notice — whichever comes first.
   */
  private async run<T>(op: string, what: string, size: number, detail: string | undefined, body: (tag: number, ms: number) => Promise<T>): Promise<T> {
    if (this.broken) throw this.broken;
    if (this.closed) throw new DistributedError(`rank ${this.rank}: ${what}: the process group is closed.`);
    const seq = ++this.seq;
    const label = `${what} #${seq}`;
    for (const [r, completed] of this.left) if (completed < seq) throw this.fail(this.leftError(label, r));
    this.store?.enter({ seq, op, size, detail });
    this.current = { seq, label };
    let timer: NodeJS.Timeout | null = null;
    const broken = new Promise<never>((_, reject) => (this.breakCurrent = reject));
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.timeoutMs)));
    // Gloo's own timeout is a backstop behind ours: ours names the rank.
    const work = body(collectiveTag(seq, op, size), this.timeoutMs + 5000).then(
      (v) => ({ ok: true as const, v }),
      (e: Error) => ({ ok: false as const, e }),
    );
    try {
      const first = await Promise.race([work, timedOut, broken]);
      if (first === 'timeout') {
        // Notices that arrive while we ask who is to blame (a peer that gave up first and
        // left) must not replace the timeout's own diagnosis.
        this.diagnosing = true;
        const err = await this.timeoutError(seq, label);
        this.diagnosing = false;
        this.timedOut = true;
        throw this.fail(err);
      }
      if (first.ok) return first.v;
      // Gloo failed (a peer's connection dropped...): give the store's notice a moment to say who.
      const notice = await Promise.race([broken.catch((e: DistributedError) => e), sleep(1000).then(() => null)]);
      throw notice ?? this.fail(new DistributedError(`rank ${this.rank}: ${label} failed in Gloo: ${first.e.message}`));
    } catch (err) {
      if (err instanceof DistributedError) throw this.broken ?? this.fail(err);
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      this.breakCurrent = null;
      this.current = null;
    }
  }

  /** Breaks the group with `err` (the first failure wins) and fails the collective in progress. */
  private fail(err: DistributedError): DistributedError {
    if (this.broken) return this.broken;
    if (this.diagnosing) return err;
    // A collective may still be blocked on the communication thread: it must not keep the process alive.
    if (this.n) this.n.glooAbandon(this.handle);
    const cur = this.current;
    this.broken = cur && !err.message.includes(cur.label) ? new DistributedError(`rank ${this.rank}: ${cur.label} failed: ${err.message}`, err.ranks) : err;
    this.breakCurrent?.(this.broken);
    return this.broken;
  }

  private leftError(label: string, r: number): DistributedError {
    return new DistributedError(`rank ${this.rank}: ${label}: rank ${r} left the process group without taking part (it finished, or failed: see its output).`, [r]);
  }

  private onNotice(n: Notice): void {
    if (this.closed) return;
    if (n.kind === 'dead') {
      this.fail(new DistributedError(`rank ${n.rank} disconnected without saying goodbye: its process exited, crashed or was killed.`, [n.rank]));
    } else if (n.kind === 'left') {
      this.left.set(n.rank, n.completed);
      if (this.current && this.current.seq > n.completed) this.fail(this.leftError(this.current.label, n.rank));
    } else if (n.kind === 'mismatch') {
      const [mine, theirs] = n.a.rank === this.rank ? [n.a, n.b] : [n.b, n.a];
      const label = this.current?.seq === n.seq ? this.current.label : `collective #${n.seq}`;
      let msg: string;
      if (mine.rank !== this.rank) {
        msg = `rank ${this.rank}: ${label}: rank ${n.a.rank} called ${n.a.op}${n.a.detail ? ` '${n.a.detail}'` : ''} as collective #${n.seq} while rank ${n.b.rank} called ${n.b.op}${n.b.detail ? ` '${n.b.detail}'` : ''}: every rank must call the same collectives in the same order.`;
      } else if (mine.op !== theirs.op || mine.op === 'barrier') {
        msg = `rank ${this.rank}: ${label}: rank ${theirs.rank} called ${theirs.op}${theirs.detail ? ` '${theirs.detail}'` : ''} as collective #${n.seq} while rank ${this.rank} called ${mine.op}${mine.detail ? ` '${mine.detail}'` : ''}: every rank must call the same collectives in the same order.`;
      } else {
        msg = `rank ${this.rank}: ${label}: rank ${theirs.rank} passed an array of ${theirs.size} floats where this rank expected ${mine.size}: every rank must pass arrays of the same length${mine.detail !== theirs.detail ? ` (and the same arguments: ${theirs.detail} vs ${mine.detail})` : ''}.`;
      }
      this.fail(new DistributedError(msg, [theirs.rank]));
    }
  }

  /**
   * A collective timed out here. Tell the store, give the others a moment to time out too,
   * then blame the ranks that never entered it, else those that entered but never timed out
   * (stopped, or stuck elsewhere).
   */
  private async timeoutError(seq: number, label: string): Promise<DistributedError> {
    this.store?.stall(seq);
    await sleep(Math.min(2000, Math.max(200, this.timeoutMs / 4)));
    const status = await this.store?.status(2000);
    const others = [...Array(this.worldSize).keys()].filter((r) => r !== this.rank);
    const s = this.timeoutMs / 1000;
    if (!status) {
      return new DistributedError(`rank ${this.rank}: ${label} timed out after ${s} s, and rank 0 (which hosts the store) does not answer either: rank 0 never arrived (hung or stopped).`, [0]);
    }
    const never = others.filter((r) => (status.entered[r] ?? 0) < seq);
    const silent = others.filter((r) => !never.includes(r) && status.stalled[r] !== seq);
    const blamed = never.length ? never : silent.length ? silent : others;
    const why = never.length
      ? `${describeRanks(never)} never arrived (hung, too slow, or calling a different collective; raise LIGHTCLIP_DDP_TIMEOUT if it is just slow)`
      : `${describeRanks(blamed)} entered it but stopped responding (a stopped or hung process)`;
    return new DistributedError(`rank ${this.rank}: ${label} timed out after ${s} s: ${why}.`, blamed);
  }
}

/**
 * The Gloo tag of a collective: sequence number, operation and length hashed (FNV-1a). Gloo
 * matches sends to receives by tag, so ranks that disagree on the operation or the length
 * never exchange data (which would abort the process inside Gloo); they wait, and the store's
 * mismatch notice names the culprit.
 */
export function collectiveTag(seq: number, op: string, size: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${seq}:${op}:${size}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h >>> 0;
}

/** Connects to the store, says hello and waits for every rank; errors name the missing ranks. */
async function joinStore(ip: string, port: number, rank: number, worldSize: number, deadline: number, timeoutMs: number): Promise<StoreClient> {
  const endpoint = `${ip}:${port}`;
  const client = await StoreClient.connect(ip, port, deadline);
  if (!client) {
    throw new DistributedError(
      `Rendezvous timed out after ${timeoutMs / 1000} s: rank ${rank} got no answer from rank 0's store at ${endpoint} (MASTER_ADDR:MASTER_PORT): rank 0 never arrived. Is it running, with the same MASTER_ADDR/MASTER_PORT?`,
      [0],
    );
  }
  try {
    let refusedBy0: (message: string) => void = () => {};
    const refusal = new Promise<never>((_, reject) => (refusedBy0 = (m) => reject(new DistributedError(`Rendezvous failed at rank 0: ${m}`, [0]))));
    refusal.catch(() => {});
    client.onNotice = (notice) => {
      if (notice.kind === 'refused') refusedBy0(notice.message);
    };
    const refused = await client.hello(rank, worldSize);
    if (refused) throw new MisconfigurationError(`Rendezvous refused by rank 0: ${refused}`);
    const joined = await Promise.race([
      client.get(JOINED_KEY, Math.max(1, deadline - Date.now())).catch(async () => {
        // The store went away: rank 0's notice (sent just before) says why.
        await Promise.race([refusal, sleep(500)]);
        throw new DistributedError(`Rendezvous failed: rank 0's store at ${endpoint} closed before every rank arrived (rank 0 exited or failed: see its output).`, [0]);
      }),
      refusal,
    ]);
    if (!joined) {
      const status = await client.status(2000);
      const missing = [...Array(worldSize).keys()].filter((r) => !status?.joined.includes(r));
      throw new DistributedError(
        `Rendezvous timed out after ${timeoutMs / 1000} s: ${describeRanks(missing)} never connected to rank 0's store at ${endpoint} (MASTER_ADDR:MASTER_PORT). Are they running, started with the same MASTER_ADDR/MASTER_PORT and WORLD_SIZE=${worldSize}?`,
        missing,
      );
    }
    return client;
  } catch (err) {
    client.close();
    throw err;
  }
}

/** The hello step over a shared directory: one file per rank, polled until all exist. */
async function fileRendezvous(dir: string, rank: number, worldSize: number, deadline: number, timeoutMs: number, init: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, `hello.${rank}`), String(process.pid));
  } catch (err) {
    throw new MisconfigurationError(`\`--ddp_init ${init}\`: cannot write to ${dir} (${(err as Error).message}); it must be a directory every node can write.`);
  }
  for (;;) {
    const names = new Set(await fs.readdir(dir).catch(() => [] as string[]));
    const missing = [...Array(worldSize).keys()].filter((r) => !names.has(`hello.${r}`));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw new DistributedError(`Rendezvous timed out after ${timeoutMs / 1000} s: ${describeRanks(missing)} never appeared in ${dir} (--ddp_init ${init}). Are they running, with the same --ddp_init and WORLD_SIZE=${worldSize}?`, missing);
    }
    await sleep(50);
  }
}
