import * as zmq from 'zeromq';
import { DistributedError, describeRanks } from './errors.js';
import { decodeHeader, EMPTY, encodeHeader, Kind, OP_NAMES, tcpEndpoint, type Header, type Incoming } from './wire.js';

/**
 * The transport under the process group: every rank binds one PULL socket (its inbox) and
 * connects one PUSH socket to every other rank's inbox (a full mesh). PUSH/PULL rather than
 * DEALER/ROUTER because each PUSH socket has exactly one peer, so (1) messages from a given
 * rank arrive in the order they were sent, which lets a goodbye prove that nothing else is
 * coming from that rank; and (2) the socket monitor of the PUSH socket to rank p reports
 * p's connection dropping, which is how a killed rank is noticed within milliseconds
 * instead of after the collective timeout. The ring all-reduce only uses the sockets to its
 * neighbours; broadcast, all-gather and barrier use the others.
 *
 * Every message is `[header, payload]`. The header carries the collective's sequence
 * number and a tag (step/piece within the collective), so messages of different
 * collectives never mix: a message that arrives early waits in the mailbox under
 * `seq:tag:src` until its collective asks for it.
 */

interface Wait {
  label: string;
  op: number;
  srcs: number[];
  got: (Incoming | undefined)[];
  keys: string[];
  remaining: number;
  resolve: (v: Incoming[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
  timeoutMs: number;
}

interface Report {
  waitingFor: number[];
  label: string;
}

/** Options of {@link PeerMesh.bind}. */
export interface MeshOptions {
  rank: number;
  worldSize: number;
  /** Interface address to bind the inbox on (reachable by the other ranks). */
  host: string;
  /** Collective timeout; also bounds blocked sends. */
  timeoutMs: number;
  /** How long a rank whose connection dropped may still say goodbye (default 1000 ms). */
  disconnectGraceMs?: number;
}

/** The sockets of one rank and its mailbox; see the file comment. */
export class PeerMesh {
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
  private readonly pull: zmq.Pull;
  private pushes: (zmq.Push | null)[] = [];
  private chains: Promise<void>[] = [];
  private readonly mailbox = new Map<string, Incoming>();
  private readonly waiters = new Map<string, { wait: Wait; index: number }>();
  private readonly waits = new Set<Wait>();
  private readonly left = new Set<number>();
  private readonly reports = new Map<number, Report>();
  private readonly disconnectTimers = new Map<number, NodeJS.Timeout>();
  private readonly graceMs: number;
  private broken: DistributedError | null = null;
  private closing = false;
  /** Set while `close` waits for the other ranks' goodbyes. */
  private onGoodbye: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  /** The endpoint other ranks connect to. */
  address = '';

  private constructor(opts: MeshOptions) {
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.timeoutMs = opts.timeoutMs;
    this.graceMs = opts.disconnectGraceMs ?? 1000;
    this.pull = new zmq.Pull({ linger: 0, receiveHighWaterMark: 0 });
  }

  /** Binds this rank's inbox on an ephemeral port of `host` and starts reading it. */
  static async bind(opts: MeshOptions): Promise<PeerMesh> {
    const mesh = new PeerMesh(opts);
    try {
      await mesh.pull.bind(tcpEndpoint(opts.host, '*'));
    } catch (err) {
      mesh.pull.close();
      throw new DistributedError(`rank ${opts.rank} could not bind its peer socket on ${opts.host} (${(err as Error).message}); set LIGHTCLIP_DDP_HOST to an address of this machine that the other ranks can reach.`, [opts.rank]);
    }
    mesh.address = mesh.pull.lastEndpoint ?? '';
    mesh.loop = mesh.receiveLoop();
    return mesh;
  }

  /** Connects a PUSH socket to every other rank's inbox (`addresses[r]` from the rendezvous). */
  connect(addresses: readonly string[]): void {
    for (let p = 0; p < this.worldSize; p++) {
      this.chains.push(Promise.resolve());
      if (p === this.rank) {
        this.pushes.push(null);
        continue;
      }
      // No high-water mark: sends never block, so a rank can always go on to its receives
      // (memory stays bounded by the collective in progress; a hung peer hits the timeout).
      const sock = new zmq.Push({ linger: 0, sendHighWaterMark: 0 });
      sock.events.on('disconnect', () => this.onDisconnect(p));
      sock.events.on('connect', () => this.cancelDisconnect(p));
      sock.connect(addresses[p]!);
      this.pushes.push(sock);
    }
  }

  /** The first failure of the group, if any (every later collective rethrows it). */
  get error(): DistributedError | null {
    return this.broken;
  }

  /** Breaks the group with `err` and tells the other ranks; returns `err` for the caller to throw. */
  abort(err: DistributedError): DistributedError {
    this.fail(err, true);
    return err;
  }

  /** Rethrows the group's first failure, if any. */
  throwIfBroken(): void {
    if (this.broken) throw this.broken;
  }

  /**
   * Queues a message to `dst`. The payload is handed to zeromq without copying, so callers
   * must never modify it afterwards. Send failures break the group (they surface in the
   * next receive) instead of rejecting here, so fire-and-forget sends cannot leave
   * unhandled rejections behind.
   */
  send(dst: number, h: Omit<Header, 'src'>, payload: Uint8Array = EMPTY): void {
    const sock = this.pushes[dst];
    if (!sock) throw new Error(`internal: no socket to rank ${dst}`);
    const frames = [encodeHeader({ ...h, src: this.rank }), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)];
    // zeromq allows one pending send per socket: chain them.
    this.chains[dst] = this.chains[dst]!.then(() => sock.send(frames)).catch((err: Error) => {
      if (this.closing) return;
      this.fail(new DistributedError(`rank ${this.rank} could not send to rank ${dst} (${err.message}).`, [dst]), true);
    });
  }

  /** Waits for the message `seq:tag` from `src`. */
  async recv(src: number, op: number, seq: number, tag: number, deadline: number, label: string): Promise<Incoming> {
    return (await this.recvMany([src], op, seq, tag, deadline, label))[0]!;
  }

  /**
   * Waits for the message `seq:tag` from each of `srcs`. Rejects when the deadline passes
   * (naming the ranks that never arrived, after asking the others what they were waiting
   * for), when a rank it needs left or died, or when the group breaks.
   */
  recvMany(srcs: readonly number[], op: number, seq: number, tag: number, deadline: number, label: string): Promise<Incoming[]> {
    this.throwIfBroken();
    return new Promise<Incoming[]>((resolve, reject) => {
      const wait: Wait = { label, op, srcs: [...srcs], got: [], keys: [], remaining: srcs.length, resolve, reject, timer: null, timeoutMs: this.timeoutMs };
      this.waits.add(wait);
      for (let index = 0; index < srcs.length && this.waits.has(wait); index++) {
        const src = srcs[index]!;
        const key = `${seq}:${tag}:${src}`;
        wait.keys.push(key);
        const ready = this.mailbox.get(key);
        if (ready) {
          this.mailbox.delete(key);
          this.fill(wait, index, ready);
        } else if (this.left.has(src)) {
          this.finish(wait, this.leftError(wait, src));
        } else {
          this.waiters.set(key, { wait, index });
        }
      }
      if (wait.remaining > 0 && this.waits.has(wait)) {
        wait.timer = setTimeout(() => void this.onTimeout(wait), Math.max(0, deadline - Date.now()));
      }
    });
  }

  /**
   * Closes every socket. When `graceful` and healthy, first says goodbye to every rank and
   * waits (up to the timeout) for every rank's goodbye: a rank says goodbye only after its
   * last collective, so once all goodbyes are in, nothing this rank sent is still needed
   * and the sockets can close without lingering on peers that are already gone.
   */
  async close(graceful = true): Promise<void> {
    if (this.closing) return;
    let clean = graceful && !this.broken;
    if (clean) {
      for (let p = 0; p < this.worldSize; p++) if (this.pushes[p]) this.send(p, { kind: Kind.Bye, op: 0, seq: 0, tag: 0, total: 0 });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.timeoutMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.onGoodbye = () => {
          if (this.broken || this.left.size >= this.worldSize - 1) done();
        };
        this.onGoodbye();
      });
      this.onGoodbye = null;
      clean = !this.broken && this.left.size >= this.worldSize - 1;
    }
    // Hand the queued goodbyes (or aborts) to zeromq, then linger briefly so they reach the
    // peers still reading; that costs nothing when the queues are empty, and at most the
    // linger when a peer is gone. A non-graceful close drops everything at once.
    const linger = clean ? 1000 : graceful ? 500 : 0;
    await Promise.race([Promise.all(this.chains), sleep(linger)]);
    this.closing = true;
    for (const t of this.disconnectTimers.values()) clearTimeout(t);
    for (const sock of this.pushes) {
      if (!sock) continue;
      sock.linger = linger;
      sock.close();
    }
    this.pull.close();
    for (const w of [...this.waits]) this.finish(w, new DistributedError(`rank ${this.rank}: ${w.label}: the process group was closed while waiting.`));
    await this.loop;
  }

  // ---- internals ----

  private fill(wait: Wait, index: number, msg: Incoming): void {
    if (msg.header.op !== wait.op) {
      const src = msg.header.src;
      this.fail(
        new DistributedError(
          `rank ${this.rank}: ${wait.label}: rank ${src} called ${OP_NAMES[msg.header.op] ?? msg.header.op} as collective #${msg.header.seq} while rank ${this.rank} called ${OP_NAMES[wait.op]}: every rank must call the same collectives in the same order.`,
          [src],
        ),
        true,
      );
      return;
    }
    if (wait.got[index] !== undefined) return;
    wait.got[index] = msg;
    if (--wait.remaining === 0) this.finish(wait, null);
  }

  private finish(wait: Wait, err: Error | null): void {
    if (!this.waits.delete(wait)) return;
    if (wait.timer) clearTimeout(wait.timer);
    for (const k of wait.keys) if (this.waiters.get(k)?.wait === wait) this.waiters.delete(k);
    if (err) wait.reject(err);
    else wait.resolve(wait.got as Incoming[]);
  }

  private leftError(wait: Wait, src: number): DistributedError {
    return new DistributedError(`rank ${this.rank}: ${wait.label}: rank ${src} left the process group without taking part (it finished, or failed: see its output).`, [src]);
  }

  /** Breaks the group: every pending and later collective fails with `err`. */
  private fail(err: DistributedError, propagate: boolean): void {
    if (this.broken) return;
    this.broken = err;
    this.onGoodbye?.();
    // Say which collective each pending wait was in, unless the message already does.
    for (const w of [...this.waits]) this.finish(w, err.message.includes(w.label) ? err : new DistributedError(`rank ${this.rank}: ${w.label} failed: ${err.message}`, err.ranks));
    if (propagate && !this.closing) {
      const body = Buffer.from(JSON.stringify({ message: err.message, ranks: err.ranks }));
      for (let p = 0; p < this.worldSize; p++) if (this.pushes[p] && !this.left.has(p)) this.send(p, { kind: Kind.Abort, op: 0, seq: 0, tag: 0, total: 0 }, body);
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.pull) this.onFrames(frames);
    } catch (err) {
      if (!this.closing) this.fail(new DistributedError(`rank ${this.rank}: its receive socket failed (${(err as Error).message}).`), true);
    }
  }

  private onFrames(frames: Buffer[]): void {
    const h = frames[0] ? decodeHeader(frames[0]) : null;
    if (!h || h.src >= this.worldSize || frames.length > 2) {
      this.fail(new DistributedError(`rank ${this.rank} received a malformed message on its peer socket ${this.address} (another program connected to it?).`), true);
      return;
    }
    const msg: Incoming = { header: h, payload: frames[1] ?? EMPTY };
    if (h.kind === Kind.Data) {
      const key = `${h.seq}:${h.tag}:${h.src}`;
      const waiter = this.waiters.get(key);
      if (waiter) {
        this.waiters.delete(key);
        this.fill(waiter.wait, waiter.index, msg);
      } else {
        this.mailbox.set(key, msg);
      }
    } else if (h.kind === Kind.Bye) {
      // Messages from one rank arrive in order: after its goodbye nothing else will come.
      this.left.add(h.src);
      this.cancelDisconnect(h.src);
      this.onGoodbye?.();
      for (const [key, { wait }] of [...this.waiters]) if (key.endsWith(`:${h.src}`)) this.finish(wait, this.leftError(wait, h.src));
    } else if (h.kind === Kind.Abort) {
      const body = parseJson(msg.payload) as { message?: string; ranks?: number[] } | null;
      const ranks = Array.isArray(body?.ranks) && body!.ranks.length ? body!.ranks : [h.src];
      this.fail(new DistributedError(`rank ${h.src} aborted the process group: ${body?.message ?? '(no reason given)'}`, ranks), false);
    } else if (h.kind === Kind.Report) {
      const body = parseJson(msg.payload) as Report | null;
      if (body && Array.isArray(body.waitingFor)) this.reports.set(h.src, body);
    }
  }

  private onDisconnect(p: number): void {
    if (this.closing || this.broken || this.left.has(p) || this.disconnectTimers.has(p)) return;
    // A rank that finishes closes its inbox right after its goodbye, which travels on another
    // connection: give the goodbye a moment to arrive before calling the rank dead.
    const t = setTimeout(() => {
      this.disconnectTimers.delete(p);
      if (this.closing || this.left.has(p)) return;
      this.fail(new DistributedError(`rank ${p} disconnected without saying goodbye: its process exited, crashed or was killed.`, [p]), true);
    }, this.graceMs);
    t.unref();
    this.disconnectTimers.set(p, t);
  }

  private cancelDisconnect(p: number): void {
    const t = this.disconnectTimers.get(p);
    if (t) clearTimeout(t);
    this.disconnectTimers.delete(p);
  }

  /**
   * A wait timed out. Tell everyone which ranks this rank waits for, give them a moment to
   * say the same, then follow the "waits for" chain to the ranks that reported nothing:
   * in a ring, rank 1 waits for rank 0 only because rank 0 waits for the missing rank 2.
   */
  private async onTimeout(wait: Wait): Promise<void> {
    if (!this.waits.has(wait)) return;
    this.waits.delete(wait);
    for (const k of wait.keys) if (this.waiters.get(k)?.wait === wait) this.waiters.delete(k);
    const missing = wait.srcs.filter((_, i) => wait.got[i] === undefined);
    const report = Buffer.from(JSON.stringify({ waitingFor: missing, label: wait.label } satisfies Report));
    for (let p = 0; p < this.worldSize; p++) if (this.pushes[p] && !this.left.has(p)) this.send(p, { kind: Kind.Report, op: 0, seq: 0, tag: 0, total: 0 }, report);
    await sleep(Math.min(2000, Math.max(200, wait.timeoutMs / 4)));
    const culprits = new Set<number>();
    const chain: string[] = [];
    const seen = new Set<number>([this.rank]);
    const queue = [...missing];
    while (queue.length) {
      const r = queue.shift()!;
      if (seen.has(r)) continue;
      seen.add(r);
      const rep = this.reports.get(r);
      if (rep) {
        chain.push(`rank ${r} was itself waiting for ${describeRanks(rep.waitingFor)} in ${rep.label}`);
        queue.push(...rep.waitingFor);
      } else {
        culprits.add(r);
      }
    }
    const blamed = culprits.size ? [...culprits] : missing;
    const why = `${describeRanks(blamed)} never arrived (hung, too slow, or calling a different collective; raise LIGHTCLIP_DDP_TIMEOUT if it is just slow)`;
    const message = `rank ${this.rank}: ${wait.label} timed out after ${wait.timeoutMs / 1000} s waiting for ${describeRanks(missing)}${chain.length ? `; ${chain.join('; ')}` : ''}: ${why}.`;
    const err = new DistributedError(message, blamed);
    wait.reject(err);
    this.fail(err, true);
  }
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
