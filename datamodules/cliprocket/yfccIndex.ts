import { closeSync, existsSync, fstatSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { PickleFormatError, UnsafePickleError } from '../../core/pickle/types.js';

/**
 * yfcc15m.pkl (SLIP's make_dataset.py: a list of 14.7M `(line_index, title, desc)` tuples)
 * turned, once, into a compact binary index instead of millions of JS objects. The pickle
 * is scanned in a streaming pass that implements just the opcodes such a list uses (the
 * restricted-unpickler subset of data-formats.md §4, no globals at all): each tuple becomes
 * a 20-byte record — line index (u32), and the file offsets of the title's and description's
 * string opcodes (f64, -1 for None) — and strings are never decoded during indexing. The memo
 * holds only file offsets (a Float64Array), tuples leave tombstones; a BINGET of a tombstone
 * (a shared tuple) is refused. Captions are read back from the pickle at sample time with two
 * small reads. Peak memory: the memo (8 bytes per memoized object) plus a 16 MB window.
 *
 * Index file: "LCYFCC1\0", pickle size (f64), pickle mtime ms (f64), count (f64), records.
 */
const MAGIC = Buffer.from('LCYFCC1\0', 'latin1');
const HEADER = 32;
export const YFCC_RECORD = 20;

const REFUSED: Record<number, string> = {
  0x63: 'GLOBAL',
  0x93: 'STACK_GLOBAL',
  0x52: 'REDUCE',
  0x62: 'BUILD',
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
  0x96: 'BYTEARRAY8',
};

/** Streams a file through a window buffer with absolute positions. */
class Window {
  private buf = Buffer.alloc(0);
  private start = 0;
  pos = 0;
  readonly size: number;
  constructor(private readonly fd: number, private readonly file: string, private readonly chunk = 16 << 20) {
    this.size = fstatSync(fd).size;
  }
  ensure(n: number): void {
    if (this.pos + n <= this.start + this.buf.length) return;
    if (this.pos + n > this.size) throw new PickleFormatError(this.file, `truncated at byte ${this.pos} (needed ${n} more)`);
    const keep = this.buf.subarray(this.pos - this.start);
    const want = Math.max(this.chunk, n);
    const next = Buffer.allocUnsafe(keep.length + want);
    keep.copy(next);
    const got = readSync(this.fd, next, keep.length, Math.min(want, this.size - (this.pos + keep.length)), this.pos + keep.length);
    this.buf = next.subarray(0, keep.length + got);
    this.start = this.pos;
  }
  u8(): number {
    this.ensure(1);
    return this.buf[this.pos++ - this.start]!;
  }
  u16(): number {
    this.ensure(2);
    const v = this.buf.readUInt16LE(this.pos - this.start);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.ensure(4);
    const v = this.buf.readUInt32LE(this.pos - this.start);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.ensure(4);
    const v = this.buf.readInt32LE(this.pos - this.start);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.ensure(8);
    const v = Number(this.buf.readBigUInt64LE(this.pos - this.start));
    this.pos += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.ensure(n);
    const b = this.buf.subarray(this.pos - this.start, this.pos - this.start + n);
    this.pos += n;
    return b;
  }
  skip(n: number): void {
    if (this.pos + n > this.size) throw new PickleFormatError(this.file, `truncated at byte ${this.pos} (a string of ${n} bytes)`);
    this.pos += n;
  }
}

// Stack items: a number (int), STR(offset) encoded as {s: offset}, MARK, LIST, ENTRY.
const MARK = -Infinity;
type Item = number | { s: number } | { e: [number, number, number] } | 'list' | typeof MARK | null;

/** Builds `indexFile` from `pkl` (atomically: written to a temp file, then renamed). Returns the count. */
export function buildYfccIndex(pkl: string, indexFile: string): number {
  const fd = openSync(pkl, 'r');
  const tmp = `${indexFile}.${process.pid}.tmp`;
  const out = openSync(tmp, 'w');
  let count = 0;
  try {
    const st = fstatSync(fd);
    const w = new Window(fd, pkl);
    const fail = (detail: string): never => {
      throw new PickleFormatError(pkl, detail);
    };
    // The memo in pages of 2^20 slots (no doubling copies): slot = file offset of a string
    // opcode, 0 = not a string (offset 0 is always PROTO), so tuples need no write at all.
    const PAGE = 1 << 20;
    const pages: Float64Array[] = [];
    let memoSize = 0;
    const memoSet = (k: number, v: number): void => {
      if (k + 1 > memoSize) memoSize = k + 1;
      if (v <= 0) {
        const page = pages[Math.floor(k / PAGE)];
        if (page) page[k % PAGE] = 0;
        return;
      }
      const p = Math.floor(k / PAGE);
      (pages[p] ??= new Float64Array(PAGE))[k % PAGE] = v;
    };
    const memoGet = (k: number): number => pages[Math.floor(k / PAGE)]?.[k % PAGE] ?? 0;
    const stack: Item[] = [];
    const marks: number[] = [];
    let pending = Buffer.alloc(YFCC_RECORD * 4096);
    let pendingN = 0;
    const header = Buffer.alloc(HEADER);
    writeSync(out, header, 0, HEADER, 0);
    let outPos = HEADER;
    const flush = (): void => {
      if (pendingN === 0) return;
      writeSync(out, pending, 0, pendingN * YFCC_RECORD, outPos);
      outPos += pendingN * YFCC_RECORD;
      pendingN = 0;
    };
    const emit = (item: Item): void => {
      if (!item || typeof item !== 'object' || !('e' in item)) fail(`the list holds something other than (index, title, desc) tuples near byte ${w.pos}`);
      const [idx, t, d] = (item as { e: [number, number, number] }).e;
      pending.writeUInt32LE(idx, pendingN * YFCC_RECORD);
      pending.writeDoubleLE(t, pendingN * YFCC_RECORD + 4);
      pending.writeDoubleLE(d, pendingN * YFCC_RECORD + 12);
      pendingN++;
      count++;
      if (pendingN * YFCC_RECORD === pending.length) flush();
    };
    const top = (): Item => (stack.length ? stack[stack.length - 1]! : fail(`empty stack at byte ${w.pos - 1}`));
    const memoOf = (item: Item): number => (item && typeof item === 'object' && 's' in item ? item.s : -2);
    const entry = (items: Item[]): Item => {
      if (items.length !== 3) fail(`a tuple of ${items.length} items at byte ${w.pos - 1}; expected (index, title, desc)`);
      const [i, t, d] = items;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= 1e8) fail(`tuple index ${String(i)} at byte ${w.pos - 1} is not an integer in [0, 10^8)`);
      const ref = (x: Item): number => (x === null ? -1 : typeof x === 'object' && x !== null && 's' in x ? x.s : fail(`title/desc at byte ${w.pos - 1} is not a string`));
      return { e: [i as number, ref(t), ref(d)] };
    };
    let root: 'none' | 'list' = 'none';
    for (;;) {
      const at = w.pos;
      const op = w.u8();
      switch (op) {
        case 0x80: // PROTO
          if (w.u8() > 5) fail(`unsupported protocol at byte ${at}`);
          break;
        case 0x95: // FRAME
          w.u64();
          break;
        case 0x2e: // STOP
          if (root !== 'list' || stack.length !== 1) fail('the pickle is not a list of (index, title, desc) tuples');
          flush();
          header.set(MAGIC, 0);
          header.writeDoubleLE(st.size, 8);
          header.writeDoubleLE(st.mtimeMs, 16);
          header.writeDoubleLE(count, 24);
          writeSync(out, header, 0, HEADER, 0);
          closeSync(out);
          renameSync(tmp, indexFile);
          return count;
        case 0x5d: // EMPTY_LIST
          if (root === 'list') fail(`nested list at byte ${at}`);
          root = 'list';
          stack.push('list');
          break;
        case 0x28: // MARK
          marks.push(stack.length);
          break;
        case 0x65: {
          // APPENDS
          const m = marks.pop() ?? fail(`APPENDS without MARK at byte ${at}`);
          if (stack[m - 1] !== 'list') fail(`APPENDS to something other than the top-level list at byte ${at}`);
          for (let k = m; k < stack.length; k++) emit(stack[k]!);
          stack.length = m;
          break;
        }
        case 0x61: // APPEND
          if (stack.length < 2 || stack[stack.length - 2] !== 'list') fail(`APPEND to something other than the list at byte ${at}`);
          emit(stack.pop()!);
          break;
        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x4a:
          stack.push(w.i32());
          break;
        case 0x4b:
          stack.push(w.u8());
          break;
        case 0x4d:
          stack.push(w.u16());
          break;
        case 0x8a: {
          // LONG1
          const n = w.u8();
          const b = w.bytes(n);
          let v = 0;
          for (let k = n - 1; k >= 0; k--) v = v * 256 + b[k]!;
          if (n > 0 && b[n - 1]! & 0x80) v -= 2 ** (8 * n);
          stack.push(v);
          break;
        }
        case 0x58: // BINUNICODE
          stack.push({ s: at });
          w.skip(w.u32());
          break;
        case 0x8c: // SHORT_BINUNICODE
        case 0x55: // SHORT_BINSTRING
          stack.push({ s: at });
          w.skip(w.u8());
          break;
        case 0x8d: // BINUNICODE8
          stack.push({ s: at });
          w.skip(w.u64());
          break;
        case 0x54: // BINSTRING
          stack.push({ s: at });
          w.skip(w.i32());
          break;
        case 0x87: {
          // TUPLE3
          const d = stack.pop()!;
          const t = stack.pop()!;
          const i = stack.pop()!;
          stack.push(entry([i, t, d]));
          break;
        }
        case 0x74: {
          // TUPLE
          const m = marks.pop() ?? fail(`TUPLE without MARK at byte ${at}`);
          const items = stack.splice(m);
          stack.push(entry(items));
          break;
        }
        case 0x71: // BINPUT
          memoSet(w.u8(), memoOf(top()));
          break;
        case 0x72: // LONG_BINPUT
          memoSet(w.u32(), memoOf(top()));
          break;
        case 0x94: // MEMOIZE
          memoSet(memoSize, memoOf(top()));
          break;
        case 0x68:
        case 0x6a: {
          // BINGET / LONG_BINGET: only strings may be shared.
          const k = op === 0x68 ? w.u8() : w.u32();
          if (k >= memoSize) fail(`memo key ${k} not found at byte ${at}`);
          const v = memoGet(k);
          if (v <= 0) fail(`BINGET of a shared tuple or list at byte ${at} (memo ${k}); expected shared strings only`);
          stack.push({ s: v });
          break;
        }
        default:
          if (REFUSED[op]) throw new UnsafePickleError(pkl, `${REFUSED[op]} opcode at byte ${at}`, [], 'globals or object construction (yfcc15m.pkl is plain data)', 'Re-create it as a pickled list of (index, title, desc) tuples.');
          fail(`unsupported opcode 0x${op.toString(16)} at byte ${at} for a list of (index, title, desc) tuples`);
      }
    }
  } catch (err) {
    try {
      closeSync(out);
    } catch {
      // already closed
    }
    try {
      renameSync(tmp, `${tmp}.failed`);
    } catch {
      // nothing to move
    }
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** Reads records and captions back (random access, two or three small reads per sample). */
export class YfccIndex {
  private constructor(
    private readonly idxFd: number,
    private readonly pklFd: number,
    readonly count: number,
    readonly pkl: string,
  ) {}

  /** Opens (building first if missing or stale) the index of `pkl` at `indexFile`. */
  static open(pkl: string, indexFile: string, log?: ((line: string) => void) | null): YfccIndex {
    const st = statSync(pkl);
    if (!YfccIndex.valid(indexFile, st.size, st.mtimeMs)) {
      const t0 = Date.now();
      const n = buildYfccIndex(pkl, indexFile);
      log?.(`indexed ${n} entries of ${pkl} into ${indexFile} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const idxFd = openSync(indexFile, 'r');
    const h = Buffer.alloc(HEADER);
    readSync(idxFd, h, 0, HEADER, 0);
    return new YfccIndex(idxFd, openSync(pkl, 'r'), h.readDoubleLE(24), pkl);
  }

  private static valid(indexFile: string, size: number, mtimeMs: number): boolean {
    if (!existsSync(indexFile)) return false;
    const fd = openSync(indexFile, 'r');
    try {
      const h = Buffer.alloc(HEADER);
      if (readSync(fd, h, 0, HEADER, 0) !== HEADER || !h.subarray(0, 8).equals(MAGIC)) return false;
      return h.readDoubleLE(8) === size && h.readDoubleLE(16) === mtimeMs && fstatSync(fd).size === HEADER + h.readDoubleLE(24) * YFCC_RECORD;
    } finally {
      closeSync(fd);
    }
  }

  /** Entry `i`: the line index and the raw title and description. */
  entry(i: number): { index: number; title: string; desc: string } {
    const r = Buffer.alloc(YFCC_RECORD);
    readSync(this.idxFd, r, 0, YFCC_RECORD, HEADER + i * YFCC_RECORD);
    return { index: r.readUInt32LE(0), title: this.string(r.readDoubleLE(4)), desc: this.string(r.readDoubleLE(12)) };
  }

  private string(offset: number): string {
    if (offset < 0) return '';
    const h = Buffer.alloc(9);
    readSync(this.pklFd, h, 0, 9, offset);
    const op = h[0]!;
    let len: number;
    let skip: number;
    if (op === 0x58) [len, skip] = [h.readUInt32LE(1), 5];
    else if (op === 0x8c || op === 0x55) [len, skip] = [h[1]!, 2];
    else if (op === 0x8d) [len, skip] = [Number(h.readBigUInt64LE(1)), 9];
    else if (op === 0x54) [len, skip] = [h.readInt32LE(1), 5];
    else throw new PickleFormatError(this.pkl, `the index points at byte ${offset}, which holds no string: rebuild the index`);
    const b = Buffer.alloc(len);
    readSync(this.pklFd, b, 0, len, offset + skip);
    return op === 0x55 || op === 0x54 ? b.toString('latin1') : new TextDecoder('utf-8', { fatal: true }).decode(b);
  }

  close(): void {
    closeSync(this.idxFd);
    closeSync(this.pklFd);
  }
}
