/**
 * Test helpers that write PyTorch checkpoints by hand: a small pickle emitter producing
 * the opcodes `torch.save` (protocol 2) writes, and a STORED zip writer laid out as torch's
 * (`archive/data.pkl`, `archive/data/<key>` 64-byte aligned, `archive/byteorder`).
 */
import { writeFileSync } from 'node:fs';
import type { RawTensor } from '../../../core/checkpoint/dtypes.js';

/** Emits pickle opcodes (protocol 2 plus a few protocol-4 forms). */
export class PickleWriter {
  private readonly out: number[] = [];
  private readonly memo = new Map<string, number>();

  private op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }

  private u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }

  proto(v = 2): this {
    return this.op(0x80, v);
  }
  mark(): this {
    return this.op(0x28);
  }
  stop(): this {
    return this.op(0x2e);
  }
  none(): this {
    return this.op(0x4e);
  }
  bool(v: boolean): this {
    return this.op(v ? 0x88 : 0x89);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  tuple(): this {
    return this.op(0x74);
  }
  tuple1(): this {
    return this.op(0x85);
  }
  tuple2(): this {
    return this.op(0x86);
  }
  tuple3(): this {
    return this.op(0x87);
  }
  reduce(): this {
    return this.op(0x52);
  }
  build(): this {
    return this.op(0x62);
  }
  setitems(): this {
    return this.op(0x75);
  }
  setitem(): this {
    return this.op(0x73);
  }
  appends(): this {
    return this.op(0x65);
  }
  binpersid(): this {
    return this.op(0x51);
  }
  stackGlobal(): this {
    return this.op(0x93);
  }
  memoize(): this {
    return this.op(0x94);
  }
  /** Raw opcode bytes, for hand-crafted (malicious) streams. */
  raw(...bytes: number[]): this {
    return this.op(...bytes);
  }

  /** BININT1 / BININT2 / BININT / LONG1 as the value needs. */
  int(n: number | bigint): this {
    if (typeof n === 'number' && n >= 0 && n < 256) return this.op(0x4b, n);
    if (typeof n === 'number' && n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...this.u32(n >>> 0));
    let v = BigInt(n);
    const bytes: number[] = [];
    do {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    } while (v !== 0n && v !== -1n);
    const negative = BigInt(n) < 0n;
    if ((bytes[bytes.length - 1]! & 0x80) !== (negative ? 0x80 : 0)) bytes.push(negative ? 0xff : 0);
    return this.op(0x8a, bytes.length, ...bytes);
  }

  /** BINUNICODE (or SHORT_BINUNICODE with `short`). */
  str(s: string, short = false): this {
    const b = [...Buffer.from(s, 'utf8')];
    return short ? this.op(0x8c, b.length, ...b) : this.op(0x58, ...this.u32(b.length), ...b);
  }

  /** GLOBAL `module\nname\n`, memoized: a repeat becomes BINGET, as CPython's pickler does. */
  global(module: string, name: string): this {
    const key = `${module}.${name}`;
    const at = this.memo.get(key);
    if (at !== undefined) return this.op(0x68, at);
    this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
    const idx = this.memo.size;
    this.memo.set(key, idx);
    return this.op(0x71, idx);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** A tensor to save: raw little-endian storage bytes plus the view (defaults: contiguous, offset 0). */
export interface TorchTensorSpec {
  storageType: string;
  /** Key of the storage; tensors naming the same key share it (tied weights, views). */
  key: string;
  /** Storage bytes (only the first tensor naming a key needs them). */
  storage?: Uint8Array;
  storageNumel: number;
  shape: number[];
  stride?: number[];
  offset?: number;
  /** Pickle as an `nn.Parameter` (`_rebuild_parameter`). */
  parameter?: boolean;
}

function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** The `data.pkl` torch.save writes for an OrderedDict state dict. */
export function statePickle(tensors: Record<string, TorchTensorSpec>): Uint8Array {
  const p = new PickleWriter().proto(2);
  p.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const [name, t] of Object.entries(tensors)) {
    p.str(name);
    if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', t.storageType).str(t.key).str('cpu').int(t.storageNumel).tuple().binpersid();
    p.int(t.offset ?? 0);
    p.mark();
    for (const d of t.shape) p.int(d);
    p.tuple();
    p.mark();
    for (const d of t.stride ?? contiguousStride(t.shape)) p.int(d);
    p.tuple();
    p.bool(false);
    p.global('collections', 'OrderedDict').emptyTuple().reduce();
    p.tuple().reduce();
    if (t.parameter) p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  p.setitems().stop();
  return p.bytes();
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE), as zip stores it. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of data) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Writes a STORED zip; each entry's data starts at a multiple of 64 (padding in the local extra field, as torch does). */
export function writeStoredZip(path: string, entries: Array<[string, Uint8Array]>): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const base = 30 + nameBuf.length;
    const pad = (64 - ((offset + base + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0); // torch's "FB" padding record
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, nameBuf, extra, Buffer.from(data));
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(nameBuf.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, nameBuf);
    offset += local.length + nameBuf.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...parts, cd, eocd]));
}

/** Writes a torch-format checkpoint of `tensors` (storages in first-use order). */
export function writeTorchZip(path: string, tensors: Record<string, TorchTensorSpec>, pickle: Uint8Array = statePickle(tensors)): void {
  const entries: Array<[string, Uint8Array]> = [['archive/data.pkl', pickle]];
  const seen = new Set<string>();
  for (const t of Object.values(tensors)) {
    if (seen.has(t.key) || !t.storage) continue;
    seen.add(t.key);
    entries.push([`archive/data/${t.key}`, t.storage]);
  }
  entries.push(['archive/byteorder', Buffer.from('little')], ['archive/version', Buffer.from('3\n')]);
  writeStoredZip(path, entries);
}

const STORAGE_OF: Partial<Record<RawTensor['dtype'], string>> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

/**
 * Tensors by name (e.g. a model's weights) as a torch checkpoint, one storage each; every
 * other tensor is pickled as an `nn.Parameter`, as a mixed state dict would be.
 */
export function writeRawTorchZip(path: string, tensors: Record<string, RawTensor>): void {
  const specs: Record<string, TorchTensorSpec> = {};
  Object.entries(tensors).forEach(([name, t], i) => {
    const storageType = STORAGE_OF[t.dtype];
    if (!storageType) throw new Error(`writeRawTorchZip: no storage type for ${t.dtype}`);
    const d = t.data;
    specs[name] = {
      storageType,
      key: String(i),
      storage: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
      storageNumel: d.length,
      shape: [...t.shape],
      parameter: i % 2 === 0,
    };
  });
  writeTorchZip(path, specs);
}
