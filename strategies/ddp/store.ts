import * as net from 'node:net';
import { MisconfigurationError } from '../../core/errors.js';

/**
 * lightclip's TCP key-value store (torch's TCPStore, reduced to what the Gloo process group
 * needs). Rank 0 serves it at MASTER_ADDR:MASTER_PORT for the lifetime of the group; every
 * rank (rank 0 included) keeps one connection to it.
 *
 * 1. Rendezvous: Gloo's `connectFullMesh` publishes each rank's addresses with `set` and
 *    reads the others' with a blocking `get` (the C++ client in native/src/gloo_pg.cc).
 * 2. Membership: each rank says HELLO with its rank; the server tells everyone when all
 *    have joined, and which ranks are missing when asked — a rendezvous timeout names them.
 * 3. Health: a connection that drops without BYE means its process died; the server pushes
 *    a DEAD notice to every rank at once, so a SIGKILLed rank is named within milliseconds
 *    on every node, whatever the collective's communication pattern. BYE carries the number
 *    of collectives the rank finished, so a rank that merely finished first is not blamed.
 * 4. Consistency: each rank reports (ENTER) every collective it starts — sequence number,
 *    operation, length — and the server pushes a MISMATCH notice when two ranks disagree
 *    (Gloo itself would hang or garble the data). On a timeout each rank reports (STALL) and
 *    asks the server (STATUS) which ranks never entered the collective or never stalled in it.
 *
 * Frames: u32 length of the rest | u8 op | u32 request id | u16 key length | key | value
 * (little-endian). Request id 0 = no reply wanted.
 */

/** Frame operation codes (shared with native/src/gloo_pg.cc for SET/GET/WAIT and the replies). */
export const StoreOp = {
  Set: 1,
  Get: 2,
  Wait: 3,
  Hello: 10,
  Bye: 11,
  Enter: 12,
  Stall: 13,
  Status: 14,
  Ok: 100,
  Timeout: 101,
  Error: 102,
  Notice: 110,
} as const;

/** The key the server sets once every rank said HELLO. */
export const JOINED_KEY = '__lightclip/joined';

/** What a rank reports when it starts a collective. */
export interface Entry {
  seq: number;
  op: string;
  /** Element count (or another per-op detail) that must agree across ranks. */
  size: number;
  detail?: string;
}

/** Pushed by the server. */
export type Notice =
  | { kind: 'dead'; rank: number }
  | { kind: 'left'; rank: number; completed: number }
  | { kind: 'mismatch'; seq: number; a: Entry & { rank: number }; b: Entry & { rank: number } }
  | { kind: 'refused'; message: string };

/** The server's view of the group (STATUS). */
export interface StoreStatus {
  worldSize: number;
  joined: number[];
  /** Last collective each rank entered (by rank; absent = none). */
  entered: Record<number, number>;
  /** Collective each rank reported a stall (timeout) in. */
  stalled: Record<number, number>;
  dead: number[];
  left: Record<number, number>;
}

interface Frame {
  op: number;
  id: number;
  key: string;
  value: Buffer;
}

function encodeFrame(op: number, id: number, key: string, value: Uint8Array = Buffer.alloc(0)): Buffer {
  const k = Buffer.from(key, 'utf8');
  const b = Buffer.alloc(4 + 7 + k.length + value.length);
  b.writeUInt32LE(7 + k.length + value.length, 0);
  b.writeUInt8(op, 4);
  b.writeUInt32LE(id, 5);
  b.writeUInt16LE(k.length, 9);
  k.copy(b, 11);
  Buffer.from(value.buffer, value.byteOffset, value.byteLength).copy(b, 11 + k.length);
  return b;
}

/** Splits a byte stream into frames. */
class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (len < 7 || len > 1 << 30) throw new Error('malformed store frame');
      if (this.buf.length < 4 + len) break;
      const f = this.buf.subarray(4, 4 + len);
      const klen = f.readUInt16LE(5);
      out.push({ op: f.readUInt8(0), id: f.readUInt32LE(1), key: f.toString('utf8', 7, 7 + klen), value: Buffer.from(f.subarray(7 + klen)) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

interface Conn {
  sock: net.Socket;
  rank: number | null;
  saidBye: boolean;
}

/** Rank 0's store server. */
export class StoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly waiters = new Map<string, Set<(v: Buffer) => void>>();
  private readonly conns = new Set<Conn>();
  private readonly joined = new Map<number, Conn>();
  private readonly entered = new Map<number, number>();
  private readonly stalled = new Map<number, number>();
  private readonly dead = new Set<number>();
  private readonly left = new Map<number, number>();
  /** First report of each collective not yet reported by every rank. */
  private readonly entries = new Map<number, { first: Entry & { rank: number }; count: number }>();
  private byeWaiter: (() => void) | null = null;

  private constructor(
    private readonly server: net.Server,
    readonly worldSize: number,
  ) {
    server.on('connection', (sock) => this.onConnection(sock));
  }

  /**
   * Listens at `host:port`, retrying for a while when the port is still held by the
   * previous group of this run (fit, then test).
   * @throws MisconfigurationError when the port is in use by something else or `host` is not this machine's.
   */
  static async listen(host: string, port: number, worldSize: number, retryMs = 10_000): Promise<StoreServer> {
    const deadline = Date.now() + retryMs;
    for (;;) {
      const server = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port, exclusive: true }, () => resolve());
        });
        return new StoreServer(server, worldSize);
      } catch (err) {
        server.close();
        const code = (err as { code?: string }).code;
        if (code === 'EADDRINUSE' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const hint = code === 'EADDRINUSE' ? 'it is in use: pick another MASTER_PORT (--master_port)' : 'rank 0 must run on the machine MASTER_ADDR names';
        throw new MisconfigurationError(`Rank 0 could not listen on ${host}:${port} (\`MASTER_PORT=${port}\`): ${(err as Error).message}; ${hint}.`);
      }
    }
  }

  /** Tells every connected rank that the rendezvous failed (rank 0's own error). */
  refuseAll(message: string): void {
    this.broadcast({ kind: 'refused', message });
  }

  /** Stops accepting connections (the rendezvous is over); existing ones stay. */
  stopListening(): void {
    this.server.close();
  }

  /**
   * Waits (up to `ms`) until every other rank said goodbye or died, then closes every
   * connection. Rank 0 calls it last, so the others never lose the store while they still
   * need it.
   */
  async close(ms: number): Promise<void> {
    const done = (): boolean => [...Array(this.worldSize).keys()].every((r) => r === 0 || this.left.has(r) || this.dead.has(r) || !this.joined.has(r));
    if (ms > 0 && !done()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        timer.unref();
        this.byeWaiter = () => {
          if (done()) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
    }
    this.byeWaiter = null;
    this.server.close();
    for (const c of this.conns) c.sock.destroy();
  }

  private onConnection(sock: net.Socket): void {
    sock.setNoDelay(true);
    const conn: Conn = { sock, rank: null, saidBye: false };
    this.conns.add(conn);
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) this.onFrame(conn, f);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.conns.delete(conn);
      const r = conn.rank;
      if (r !== null && !conn.saidBye && this.joined.get(r) === conn && !this.dead.has(r)) {
        this.dead.add(r);
        this.broadcast({ kind: 'dead', rank: r });
      }
      this.byeWaiter?.();
    });
  }

  private reply(conn: Conn, f: Frame, op: number, value?: Uint8Array): void {
    if (f.id !== 0 && !conn.sock.destroyed) conn.sock.write(encodeFrame(op, f.id, f.key, value));
  }

  private broadcast(n: Notice): void {
    const frame = encodeFrame(StoreOp.Notice, 0, '', Buffer.from(JSON.stringify(n)));
    for (const c of this.conns) if ((c.rank !== null || n.kind === 'refused') && !c.sock.destroyed) c.sock.write(frame);
  }

  private set(key: string, value: Buffer): void {
    this.data.set(key, value);
    const ws = this.waiters.get(key);
    if (ws) {
      this.waiters.delete(key);
      for (const w of ws) w(value);
    }
  }

  private onFrame(conn: Conn, f: Frame): void {
    switch (f.op) {
      case StoreOp.Set:
        this.set(f.key, f.value);
        this.reply(conn, f, StoreOp.Ok);
        return;
      case StoreOp.Get:
      case StoreOp.Wait: {
        const answer = (v: Buffer): void => this.reply(conn, f, StoreOp.Ok, f.op === StoreOp.Get ? v : undefined);
        const have = this.data.get(f.key);
        if (have) return answer(have);
        const ms = f.value.length >= 4 ? f.value.readUInt32LE(0) : 30_000;
        let set = this.waiters.get(f.key);
        if (!set) this.waiters.set(f.key, (set = new Set()));
        const waiter = (v: Buffer): void => {
          clearTimeout(timer);
          answer(v);
        };
        const timer = setTimeout(() => {
          set!.delete(waiter);
          this.reply(conn, f, StoreOp.Timeout);
        }, ms);
        timer.unref();
        set.add(waiter);
        return;
      }
      case StoreOp.Hello: {
        const h = parseJson(f.value) as { rank?: unknown; worldSize?: unknown } | null;
        const rank = h?.rank;
        const refuse = (message: string): void => this.reply(conn, f, StoreOp.Error, Buffer.from(message));
        if (!h || typeof rank !== 'number' || typeof h.worldSize !== 'number') return refuse('malformed HELLO: is MASTER_PORT used by another program?');
        if (h.worldSize !== this.worldSize) {
          return refuse(`rank ${rank} has WORLD_SIZE=${h.worldSize} but rank 0 has WORLD_SIZE=${this.worldSize}: start every process with the same --devices × --num_nodes.`);
        }
        if (!Number.isInteger(rank) || rank < 0 || rank >= this.worldSize || this.joined.has(rank)) {
          return refuse(`two processes claim RANK=${rank} (or it is outside [0, ${this.worldSize - 1}]): check --node_rank/NODE_RANK and RANK on every node.`);
        }
        conn.rank = rank;
        this.joined.set(rank, conn);
        this.reply(conn, f, StoreOp.Ok);
        if (this.joined.size === this.worldSize) this.set(JOINED_KEY, Buffer.from('1'));
        return;
      }
      case StoreOp.Bye: {
        if (conn.rank === null) return;
        conn.saidBye = true;
        const completed = f.value.length >= 4 ? f.value.readUInt32LE(0) : 0;
        this.left.set(conn.rank, completed);
        this.broadcast({ kind: 'left', rank: conn.rank, completed });
        this.reply(conn, f, StoreOp.Ok);
        this.byeWaiter?.();
        return;
      }
      case StoreOp.Enter: {
        const e = parseJson(f.value) as Entry | null;
        if (conn.rank === null || !e || typeof e.seq !== 'number') return;
        this.entered.set(conn.rank, e.seq);
        const me = { ...e, rank: conn.rank };
        const prev = this.entries.get(e.seq);
        if (!prev) {
          this.entries.set(e.seq, { first: me, count: 1 });
        } else {
          if (prev.first.op !== e.op || prev.first.size !== e.size || (prev.first.detail ?? '') !== (e.detail ?? '')) {
            this.broadcast({ kind: 'mismatch', seq: e.seq, a: prev.first, b: me });
          }
          if (++prev.count === this.worldSize) this.entries.delete(e.seq);
        }
        return;
      }
      case StoreOp.Stall: {
        if (conn.rank !== null && f.value.length >= 4) this.stalled.set(conn.rank, f.value.readUInt32LE(0));
        return;
      }
      case StoreOp.Status: {
        const status: StoreStatus = {
          worldSize: this.worldSize,
          joined: [...this.joined.keys()].sort((a, b) => a - b),
          entered: Object.fromEntries(this.entered),
          stalled: Object.fromEntries(this.stalled),
          dead: [...this.dead],
          left: Object.fromEntries(this.left),
        };
        this.reply(conn, f, StoreOp.Ok, Buffer.from(JSON.stringify(status)));
        return;
      }
      default:
        this.reply(conn, f, StoreOp.Error, Buffer.from(`unknown store operation ${f.op}`));
    }
  }
}

/** A rank's connection to the store. */
export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  private closedByUs = false;
  /** Called for each notice the server pushes. */
  onNotice: (n: Notice) => void = () => {};
  /** Called once when the connection drops without `close()` (rank 0 is gone). */
  onLost: () => void = () => {};

  private constructor(
    private readonly sock: net.Socket,
    readonly endpoint: string,
  ) {
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (f.op === StoreOp.Notice) {
          const n = parseJson(f.value) as Notice | null;
          if (n) this.onNotice(n);
          continue;
        }
        const p = this.pending.get(f.id);
        this.pending.delete(f.id);
        p?.resolve(f);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`the store at ${endpoint} closed the connection`));
      this.pending.clear();
      if (!this.closedByUs) this.onLost();
    });
  }

  /** Connects, retrying until `deadline` (rank 0 may start listening after this rank starts). Null when it never answered. */
  static async connect(host: string, port: number, deadline: number): Promise<StoreClient | null> {
    const endpoint = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    for (;;) {
      const sock = await new Promise<net.Socket | null>((resolve) => {
        const s = net.connect({ host, port });
        const fail = (): void => {
          s.destroy();
          resolve(null);
        };
        const timer = setTimeout(fail, Math.max(1, Math.min(5000, deadline - Date.now())));
        s.once('connect', () => {
          clearTimeout(timer);
          s.off('error', fail);
          resolve(s);
        });
        s.once('error', () => {
          clearTimeout(timer);
          fail();
        });
      });
      if (sock) {
        sock.setNoDelay(true);
        return new StoreClient(sock, endpoint);
      }
      if (Date.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends a request and waits for its reply frame. */
  request(op: number, key = '', value?: Uint8Array): Promise<Frame> {
    const id = this.nextId++;
    return new Promise<Frame>((resolve, reject) => {
      if (this.sock.destroyed) return reject(new Error(`the store at ${this.endpoint} is not connected`));
      this.pending.set(id, { resolve, reject });
      this.sock.write(encodeFrame(op, id, key, value));
    });
  }

  /** Sends a message that wants no reply. */
  post(op: number, key = '', value?: Uint8Array): void {
    if (!this.sock.destroyed) this.sock.write(encodeFrame(op, 0, key, value));
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await this.request(StoreOp.Set, key, value);
  }

  /** The value of `key`, waiting up to `ms` for it to be set; null on timeout. */
  async get(key: string, ms: number): Promise<Buffer | null> {
    const f = await this.request(StoreOp.Get, key, u32(Math.max(1, Math.round(ms))));
    return f.op === StoreOp.Ok ? f.value : null;
  }

  /** Says HELLO; resolves to an error message when the server refuses this rank. */
  async hello(rank: number, worldSize: number): Promise<string | null> {
    const f = await this.request(StoreOp.Hello, '', Buffer.from(JSON.stringify({ rank, worldSize })));
    return f.op === StoreOp.Ok ? null : f.value.toString('utf8');
  }

  async status(ms: number): Promise<StoreStatus | null> {
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), ms).unref());
    const f = await Promise.race([this.request(StoreOp.Status).catch(() => null), timeout]);
    return f && f.op === StoreOp.Ok ? (parseJson(f.value) as StoreStatus) : null;
  }

  enter(e: Entry): void {
    this.post(StoreOp.Enter, '', Buffer.from(JSON.stringify(e)));
  }

  stall(seq: number): void {
    this.post(StoreOp.Stall, '', u32(seq));
  }

  /** Says goodbye (after `completed` collectives) and waits briefly for the server to take note. */
  async bye(completed: number, ms = 2000): Promise<void> {
    const timeout = new Promise<void>((r) => setTimeout(r, ms).unref());
    await Promise.race([this.request(StoreOp.Bye, '', u32(completed)).catch(() => undefined), timeout]);
  }

  /** Closes the connection (no notice to anyone: call `bye` first for a clean exit). */
  close(): void {
    this.closedByUs = true;
    this.sock.destroy();
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return null;
  }
}
