/**
 * LZ4 *block* format (lz4 Block Format Description 1.6.x) as python-lz4's `lz4.block` writes it
 * with `store_size=True`, which is what Deep Lake v3 uses for `lz4` chunk and sample
 * compression (core/compression.py): a 4-byte little-endian uncompressed size, then one block.
 * Exactly five zero bytes means an empty buffer. A buffer starting with the LZ4 *frame* magic
 * `04 22 4D 18` is rejected with a clear error (deeplake never writes frames for chunks).
 */

const FRAME_MAGIC = 0x184d2204;
const MIN_MATCH = 4;
/** The last 5 bytes are always literals; the last match must start 12 bytes before the end. */
const LAST_LITERALS = 5;
const MF_LIMIT = 12;

export class Lz4Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Lz4Error';
  }
}

/** Decodes a size-prefixed LZ4 block (see the module comment). `what` names the data in errors. */
export function lz4Decompress(input: Uint8Array, what = 'lz4 data'): Uint8Array {
  if (input.length === 5 && input.every((b) => b === 0)) return new Uint8Array(0);
  if (input.length < 4) throw new Lz4Error(`${what}: ${input.length} bytes is too short for an lz4 block (4-byte size prefix expected)`);
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  if (view.getUint32(0, true) === FRAME_MAGIC) throw new Lz4Error(`${what}: LZ4 frame format is not supported (expected a python-lz4 block with a size prefix)`);
  const size = view.getUint32(0, true);
  return lz4DecodeBlock(input.subarray(4), size, what);
}

/** Decodes one raw LZ4 block whose decoded size is `size`. */
export function lz4DecodeBlock(src: Uint8Array, size: number, what = 'lz4 data'): Uint8Array {
  const out = new Uint8Array(size);
  let ip = 0;
  let op = 0;
  const n = src.length;
  const corrupt = (why: string): never => {
    throw new Lz4Error(`${what}: corrupt lz4 block (${why} at input byte ${ip + 4}, output byte ${op} of ${size})`);
  };
  while (ip < n) {
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= n) corrupt('truncated literal length');
        b = src[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > n) corrupt('literals run past the end');
    if (op + lit > size) corrupt('literals overflow the declared size');
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === n) break; // the last sequence has literals only
    if (ip + 2 > n) corrupt('truncated match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) corrupt(`bad match offset ${offset}`);
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= n) corrupt('truncated match length');
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (op + len > size) corrupt('match overflows the declared size');
    let from = op - offset;
    if (offset >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      // Overlapping match: a repeating pattern, copied byte by byte.
      for (let k = 0; k < len; k++) out[op++] = out[from++]!;
    }
  }
  if (op !== size) corrupt(`decoded ${op} bytes`);
  return out;
}

/**
 * Compresses `input` into a size-prefixed LZ4 block (greedy matching with a 4-byte hash
 * table, as lz4's fast mode). Used by the Deep Lake writer; any conforming decoder reads it.
 */
export function lz4Compress(input: Uint8Array): Uint8Array {
  const n = input.length;
  if (n === 0) return new Uint8Array(5);
  const out = new Uint8Array(4 + n + Math.ceil(n / 255) + 16);
  new DataView(out.buffer).setUint32(0, n, true);
  let op = 4;
  const HASH_BITS = 16;
  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  const read32 = (i: number): number => input[i]! | (input[i + 1]! << 8) | (input[i + 2]! << 16) | (input[i + 3]! << 24);
  const hash = (v: number): number => Math.imul(v, 2654435761) >>> (32 - HASH_BITS);
  let anchor = 0;
  let ip = 0;
  const matchLimit = n - LAST_LITERALS;
  const writeLength = (len: number): void => {
    while (len >= 255) {
      out[op++] = 255;
      len -= 255;
    }
    out[op++] = len;
  };
  const emit = (litEnd: number, matchLen: number, offset: number): void => {
    const lit = litEnd - anchor;
    const tokenAt = op++;
    out[tokenAt] = (Math.min(lit, 15) << 4) | (matchLen > 0 ? Math.min(matchLen - MIN_MATCH, 15) : 0);
    if (lit >= 15) writeLength(lit - 15);
    out.set(input.subarray(anchor, litEnd), op);
    op += lit;
    if (matchLen > 0) {
      out[op++] = offset & 255;
      out[op++] = offset >>> 8;
      if (matchLen - MIN_MATCH >= 15) writeLength(matchLen - MIN_MATCH - 15);
    }
  };
  if (n >= MF_LIMIT + 1) {
    while (ip < n - MF_LIMIT) {
      const v = read32(ip);
      const h = hash(v);
      const ref = table[h]!;
      table[h] = ip;
      if (ref >= 0 && ip - ref <= 65535 && read32(ref) === v) {
        let len = MIN_MATCH;
        while (ip + len < matchLimit && input[ref + len] === input[ip + len]) len++;
        emit(ip, len, ip - ref);
        ip += len;
        anchor = ip;
      } else {
        ip++;
      }
    }
  }
  emit(n, 0, 0);
  return out.slice(0, op);
}
