/**
 * A minimal protocol-buffers wire-format writer (for the event/summary messages) and
 * reader (for tests and tools that read event files back). It knows wire types, not
 * schemas: the message encoders in `summary.ts` name the field numbers.
 *
 * Wire format: https://protobuf.dev/programming-guides/encoding/
 */

/** Protobuf wire types (the low 3 bits of a field key). */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  Fixed32: 5,
} as const;
/** One of the {@link WireType} values. */
export type WireType = (typeof WireType)[keyof typeof WireType];

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Appends fields to a growable buffer. Every method writes its field unconditionally:
 * omitting proto3 defaults is the caller's choice, because members of a `oneof` (such as
 * `Summary.Value.simple_value = 0`) must be written even when they equal the default.
 */
export class ProtoWriter {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  /** Number of bytes written so far. */
  get length(): number {
    return this.len;
  }

  private reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Writes a raw varint. Negative numbers are written as 64-bit two's complement (10 bytes). */
  rawVarint(value: number | bigint): this {
    if (typeof value === 'number' && value >= 0 && value <= 0xffffffff && Number.isInteger(value)) {
      // Fast path without BigInt for the common case (keys, lengths, steps below 2^32).
      this.reserve(5);
      let v = value;
      while (v > 0x7f) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v = Math.floor(v / 128);
      }
      this.buf[this.len++] = v;
      return this;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new RangeError(`varint value must be a safe integer, got ${value}`);
    }
    let v = BigInt.asUintN(64, BigInt(value));
    this.reserve(10);
    while (v > 0x7fn) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
    return this;
  }

  /** Writes a field key (`field << 3 | wireType`). */
  key(field: number, wireType: WireType): this {
    return this.rawVarint(field * 8 + wireType);
  }

  /** `int32`/`int64`/`uint64`/enum field (wire type 0). */
  varint(field: number, value: number | bigint): this {
    return this.key(field, WireType.Varint).rawVarint(value);
  }

  /** `bool` field. */
  bool(field: number, value: boolean): this {
    return this.varint(field, value ? 1 : 0);
  }

  /** `double` field (fixed64, little-endian IEEE 754). */
  double(field: number, value: number): this {
    this.key(field, WireType.Fixed64);
    this.reserve(8);
    this.view.setFloat64(this.len, value, true);
    this.len += 8;
    return this;
  }

  /** `float` field (fixed32): the value is rounded to float32. */
  float(field: number, value: number): this {
    this.key(field, WireType.Fixed32);
    this.reserve(4);
    this.view.setFloat32(this.len, value, true);
    this.len += 4;
    return this;
  }

  /** `bytes` field, or an already-encoded embedded message. */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WireType.LengthDelimited).rawVarint(value.length);
    this.reserve(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
    return this;
  }

  /** `string` field, UTF-8 encoded. */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message field. */
  message(field: number, value: ProtoWriter | Uint8Array): this {
    return this.bytes(field, value instanceof ProtoWriter ? value.finish() : value);
  }

  /** `repeated double` field in packed form (one length-delimited run of fixed64s). */
  packedDoubles(field: number, values: ArrayLike<number>): this {
    const n = values.length;
    this.key(field, WireType.LengthDelimited).rawVarint(n * 8);
    this.reserve(n * 8);
    for (let i = 0; i < n; i++) {
      this.view.setFloat64(this.len, values[i]!, true);
      this.len += 8;
    }
    return this;
  }

  /** The encoded bytes (a copy; the writer can keep appending). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** One decoded field: varints as bigint, everything else as raw bytes. */
export type ProtoField =
  | { readonly field: number; readonly wireType: typeof WireType.Varint; readonly value: bigint }
  | {
      readonly field: number;
      readonly wireType: typeof WireType.Fixed64 | typeof WireType.LengthDelimited | typeof WireType.Fixed32;
      readonly value: Uint8Array;
    };

/**
 * Splits an encoded message into its fields, in wire order.
 * @throws RangeError on truncated input or an unsupported wire type (groups, 3/4).
 */
export function decodeFields(bytes: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new RangeError('truncated varint');
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new RangeError('varint longer than 10 bytes');
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) throw new RangeError(`truncated field: need ${n} bytes at ${pos}, have ${bytes.length - pos}`);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < bytes.length) {
    const k = readVarint();
    const field = Number(k >> 3n);
    const wireType = Number(k & 7n);
    if (wireType === WireType.Varint) fields.push({ field, wireType, value: readVarint() });
    else if (wireType === WireType.Fixed64) fields.push({ field, wireType, value: take(8) });
    else if (wireType === WireType.Fixed32) fields.push({ field, wireType, value: take(4) });
    else if (wireType === WireType.LengthDelimited) fields.push({ field, wireType, value: take(Number(readVarint())) });
    else throw new RangeError(`unsupported wire type ${wireType} for field ${field}`);
  }
  return fields;
}

/**
 * Read-only view of a decoded message with typed accessors by field number. Accessors of
 * a scalar return the last occurrence (protobuf's "last one wins") and `undefined` when
 * absent, so callers see proto3 defaults explicitly.
 */
export class ProtoMessage {
  /** The fields in wire order. */
  readonly fields: readonly ProtoField[];

  constructor(bytes: Uint8Array) {
    this.fields = decodeFields(bytes);
  }

  private last(field: number): ProtoField | undefined {
    for (let i = this.fields.length - 1; i >= 0; i--) if (this.fields[i]!.field === field) return this.fields[i];
    return undefined;
  }

  private lastOf(field: number, wireType: WireType): ProtoField | undefined {
    const f = this.last(field);
    if (f !== undefined && f.wireType !== wireType) {
      throw new RangeError(`field ${field} has wire type ${f.wireType}, expected ${wireType}`);
    }
    return f;
  }

  /** Whether field `field` occurs at all. */
  has(field: number): boolean {
    return this.last(field) !== undefined;
  }

  /** Varint field as bigint (int64 values keep all 64 bits). */
  varint(field: number): bigint | undefined {
    const f = this.lastOf(field, WireType.Varint);
    return f === undefined ? undefined : (f.value as bigint);
  }

  /** Varint field as a signed number (int32/int64 within the safe range). */
  int(field: number): number | undefined {
    const v = this.varint(field);
    return v === undefined ? undefined : Number(BigInt.asIntN(64, v));
  }

  /** `double` field. */
  double(field: number): number | undefined {
    const f = this.lastOf(field, WireType.Fixed64);
    if (f === undefined) return undefined;
    const b = f.value as Uint8Array;
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
  }

  /** `float` field. */
  float(field: number): number | undefined {
    const f = this.lastOf(field, WireType.Fixed32);
    if (f === undefined) return undefined;
    const b = f.value as Uint8Array;
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  /** `bytes` field. */
  bytes(field: number): Uint8Array | undefined {
    const f = this.lastOf(field, WireType.LengthDelimited);
    return f === undefined ? undefined : (f.value as Uint8Array);
  }

  /** `string` field. */
  string(field: number): string | undefined {
    const b = this.bytes(field);
    return b === undefined ? undefined : textDecoder.decode(b);
  }

  /** Embedded message field. */
  message(field: number): ProtoMessage | undefined {
    const b = this.bytes(field);
    return b === undefined ? undefined : new ProtoMessage(b);
  }

  /** All occurrences of a length-delimited field, in order (`repeated bytes`/`string`/messages). */
  repeatedBytes(field: number): Uint8Array[] {
    return this.fields
      .filter((f) => f.field === field && f.wireType === WireType.LengthDelimited)
      .map((f) => f.value as Uint8Array);
  }

  /** All occurrences of an embedded message field. */
  repeatedMessages(field: number): ProtoMessage[] {
    return this.repeatedBytes(field).map((b) => new ProtoMessage(b));
  }

  /** A packed `repeated double` field (all packed runs concatenated). */
  packedDoubles(field: number): number[] {
    const out: number[] = [];
    for (const b of this.repeatedBytes(field)) {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i + 8 <= b.byteLength; i += 8) out.push(view.getFloat64(i, true));
    }
    return out;
  }
}
