/**
 * Deep Lake v3 binary encoders (deeplake 3.9.x core/serialize.py, core/meta/encode/*):
 * the chunk-id encoder (`chunks_index/unsharded`), chunk files (shape and byte-position
 * encoders + data), the tile encoder (`tiles_index/unsharded`) and the link creds encoder.
 * All integers are little-endian and unaligned, so everything goes through DataView.
 * Parsers take `what` (the object's path) for their error messages.
 */

export class DeepLakeFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeepLakeFormatError';
  }
}

function fail(what: string, why: string): never {
  throw new DeepLakeFormatError(`${what}: ${why}`);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads the `u8 L` + L ASCII bytes version prefix. */
function readVersion(b: Uint8Array, what: string): { version: string; offset: number } {
  if (b.length < 1) fail(what, 'empty file (expected a version prefix)');
  const len = b[0]!;
  if (1 + len > b.length) fail(what, `truncated version string (${len} bytes announced, ${b.length - 1} present)`);
  const version = Buffer.from(b.subarray(1, 1 + len)).toString('latin1');
  if (!/^[0-9][0-9A-Za-z.+-]*$/.test(version)) fail(what, `not a Deep Lake encoder (version prefix ${JSON.stringify(version)})`);
  return { version, offset: 1 + len };
}

/** `a` < `b` as dotted versions (numeric parts compared as numbers). */
export function versionLess(a: string, b: string): boolean {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0;
  }
  return false;
}

/** The chunk-id encoder: one row per chunk (or per tile), `[chunk id, last global index]`. */
export interface ChunkIndex {
  version: string;
  /** Chunk names: lowercase hex of the id, no padding. */
  names: string[];
  /** Last global sample index of each row; -1 for a row that holds no sample. */
  lasts: Float64Array;
}

export function parseChunkIndex(b: Uint8Array, what: string): ChunkIndex {
  const { version, offset } = readVersion(b, what);
  let itemsize = 4;
  let off = offset;
  if (!versionLess(version, '2.7.6')) {
    if (off >= b.length) return { version, names: [], lasts: new Float64Array(0) };
    itemsize = b[off]!;
    off++;
    if (itemsize !== 4 && itemsize !== 8) fail(what, `chunk-id entries of ${itemsize} bytes (expected 4 or 8)`);
  }
  const rowBytes = 2 * itemsize;
  if ((b.length - off) % rowBytes !== 0) fail(what, `truncated chunk-id encoder (${b.length - off} bytes is not a whole number of ${rowBytes}-byte rows)`);
  const n = (b.length - off) / rowBytes;
  const dv = view(b);
  const names: string[] = new Array(n);
  const lasts = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const p = off + r * rowBytes;
    if (itemsize === 8) {
      names[r] = dv.getBigUint64(p, true).toString(16);
      const last = dv.getBigUint64(p + 8, true);
      lasts[r] = last === 0xffffffffffffffffn || last === 0xffffffffn ? -1 : Number(last);
    } else {
      names[r] = dv.getUint32(p, true).toString(16);
      const last = dv.getUint32(p + 4, true);
      lasts[r] = last === 0xffffffff ? -1 : last;
    }
  }
  return { version, names, lasts };
}

export function serializeChunkIndex(version: string, ids: readonly bigint[], lasts: readonly number[]): Uint8Array {
  const v = Buffer.from(version, 'latin1');
  const out = new Uint8Array(2 + v.length + ids.length * 16);
  out[0] = v.length;
  out.set(v, 1);
  out[1 + v.length] = 8;
  const dv = view(out);
  ids.forEach((id, r) => {
    dv.setBigUint64(2 + v.length + r * 16, id, true);
    dv.setBigUint64(2 + v.length + r * 16 + 8, BigInt(lasts[r]!), true);
  });
  return out;
}

/** A parsed chunk file. Encoders are run-length rows; `data` is the (possibly compressed) data section. */
export interface Chunk {
  version: string;
  /** Shape rows `[dim0..dimk-1, lastLocal]`, `shapeCols` columns each (0 rows: shapes come from the meta). */
  shapes: Uint32Array;
  shapeCols: number;
  /** Byte rows `[numBytes, startByte, lastLocal]` (0 rows: fixed-size samples). */
  bytes: Uint32Array;
  data: Uint8Array;
}

export function parseChunk(b: Uint8Array, what: string): Chunk {
  const { version, offset } = readVersion(b, what);
  const dv = view(b);
  let off = offset;
  if (off + 8 > b.length) fail(what, 'truncated chunk header (shape encoder size)');
  const rows = dv.getInt32(off, true);
  const cols = dv.getInt32(off + 4, true);
  off += 8;
  if (rows < 0 || cols < 0 || (rows > 0 && cols < 1)) fail(what, `bad shape encoder size ${rows}x${cols}`);
  const nShape = rows * cols;
  if (off + nShape * 4 + 4 > b.length) fail(what, `truncated chunk header (${rows}x${cols} shape rows announced)`);
  const shapes = new Uint32Array(nShape);
  for (let k = 0; k < nShape; k++) shapes[k] = dv.getUint32(off + 4 * k, true);
  off += nShape * 4;
  const nb = dv.getUint32(off, true);
  off += 4;
  if (off + nb * 12 > b.length) fail(what, `truncated chunk header (${nb} byte-position rows announced, file is ${b.length} bytes)`);
  const bytes = new Uint32Array(nb * 3);
  for (let k = 0; k < nb * 3; k++) bytes[k] = dv.getUint32(off + 4 * k, true);
  off += nb * 12;
  return { version, shapes, shapeCols: rows > 0 ? cols : 0, bytes, data: b.subarray(off) };
}

/** Serializes a chunk: shape rows (each `[...shape, last]`), byte rows `[n, start, last]`, data. */
export function serializeChunk(version: string, shapeRows: readonly number[][], byteRows: readonly number[][], data: Uint8Array): Uint8Array {
  const v = Buffer.from(version, 'latin1');
  const cols = shapeRows.length ? shapeRows[0]!.length : 0;
  const size = 1 + v.length + 8 + shapeRows.length * cols * 4 + 4 + byteRows.length * 12 + data.length;
  const out = new Uint8Array(size);
  const dv = view(out);
  out[0] = v.length;
  out.set(v, 1);
  let off = 1 + v.length;
  dv.setInt32(off, shapeRows.length, true);
  dv.setInt32(off + 4, shapeRows.length ? cols : 0, true);
  off += 8;
  for (const row of shapeRows) for (const x of row) (dv.setUint32(off, x, true), (off += 4));
  dv.setUint32(off, byteRows.length, true);
  off += 4;
  for (const row of byteRows) for (const x of row) (dv.setUint32(off, x, true), (off += 4));
  out.set(data, off);
  return out;
}

/** First run-length row (of `width` columns, last column = last index) whose last ≥ `i`. */
export function findRow(rows: Uint32Array | Float64Array, width: number, i: number): number {
  let lo = 0;
  let hi = rows.length / width;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid * width + width - 1]! >= i) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Shape of local sample `local` from the chunk's shape rows, or null when the chunk stores none. */
export function chunkSampleShape(c: Chunk, local: number, what: string): number[] | null {
  if (c.shapeCols === 0) return null;
  const w = c.shapeCols;
  const r = findRow(c.shapes, w, local);
  if (r * w >= c.shapes.length) fail(what, `no shape row for local sample ${local}`);
  return Array.from(c.shapes.subarray(r * w, r * w + w - 1));
}

/** Byte range of local sample `local` from the byte-position rows, or null when the chunk stores none. */
export function chunkSampleRange(c: Chunk, local: number, what: string): { start: number; end: number } | null {
  if (c.bytes.length === 0) return null;
  const r = findRow(c.bytes, 3, local);
  if (r * 3 >= c.bytes.length) fail(what, `no byte-position row for local sample ${local}`);
  const prevLast = r === 0 ? -1 : c.bytes[(r - 1) * 3 + 2]!;
  const n = c.bytes[r * 3]!;
  const start = c.bytes[r * 3 + 1]! + (local - (prevLast + 1)) * n;
  return { start, end: start + n };
}

/** Tiled samples: sample index → full sample shape and tile shape. */
export interface TileIndex {
  version: string;
  entries: Map<number, { sampleShape: number[]; tileShape: number[] }>;
}

export function parseTileIndex(b: Uint8Array, what: string): TileIndex {
  const { version, offset } = readVersion(b, what);
  const entries = new Map<number, { sampleShape: number[]; tileShape: number[] }>();
  const dv = view(b);
  if (offset + 8 > b.length) return { version, entries };
  const n = Number(dv.getBigUint64(offset, true));
  if (n === 0) return { version, entries };
  if (offset + 16 > b.length) fail(what, 'truncated tile encoder');
  const ndim = Number(dv.getBigUint64(offset + 8, true));
  let off = offset + 16;
  if (off + n * (1 + 2 * ndim) * 8 > b.length) fail(what, `truncated tile encoder (${n} entries of ${ndim} dims announced)`);
  const u = (): number => {
    const x = Number(dv.getBigUint64(off, true));
    off += 8;
    return x;
  };
  for (let k = 0; k < n; k++) {
    const idx = u();
    const sampleShape = Array.from({ length: ndim }, u);
    const tileShape = Array.from({ length: ndim }, u);
    entries.set(idx, { sampleShape, tileShape });
  }
  return { version, entries };
}

export function serializeTileIndex(version: string, entries: ReadonlyMap<number, { sampleShape: number[]; tileShape: number[] }>): Uint8Array {
  const v = Buffer.from(version, 'latin1');
  const list = [...entries.entries()].sort((a, b) => a[0] - b[0]);
  const ndim = list.length ? list[0]![1].sampleShape.length : 0;
  const words = [BigInt(list.length), ...(list.length ? [BigInt(ndim)] : [])];
  for (const [i, e] of list) words.push(BigInt(i), ...e.sampleShape.map(BigInt), ...e.tileShape.map(BigInt));
  const out = new Uint8Array(1 + v.length + words.length * 8);
  out[0] = v.length;
  out.set(v, 1);
  const dv = view(out);
  words.forEach((w, k) => dv.setBigUint64(1 + v.length + k * 8, w, true));
  return out;
}

/** Link creds encoder rows `[credsIndex, lastGlobalIndex]` (uint32). */
export function parseCredsIndex(b: Uint8Array, what: string): Uint32Array {
  const { offset } = readVersion(b, what);
  if ((b.length - offset) % 8 !== 0) fail(what, 'truncated creds encoder');
  const dv = view(b);
  const out = new Uint32Array((b.length - offset) / 4);
  for (let k = 0; k < out.length; k++) out[k] = dv.getUint32(offset + 4 * k, true);
  return out;
}
