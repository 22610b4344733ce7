/**
 * safetensors dtypes, the typed arrays that hold them, and the conversions to the three
 * dtypes tfjs has (`float32`, `int32`, `bool`). Kept apart from the file format so that
 * `safetensors.ts` only deals with bytes and layout.
 */
import { tf } from '../tf.js';

/** The safetensors dtypes lightclip reads and writes. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'I8' | 'U8' | 'BOOL';

/**
 * Raw element storage for each dtype. F16 and BF16 hold the raw 16-bit patterns (JavaScript
 * has no half-float array), BOOL holds one byte per element (0 or 1), I64 holds bigints.
 */
export interface SafetensorsArrayTypes {
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  F64: Float64Array;
  I32: Int32Array;
  I64: BigInt64Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** Any typed array a safetensors tensor can be stored in. */
export type SafetensorsTypedArray = SafetensorsArrayTypes[SafetensorsDtype];

/** One tensor as stored in a safetensors file: dtype, shape and raw little-endian elements. */
export interface RawTensor<D extends SafetensorsDtype = SafetensorsDtype> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: SafetensorsArrayTypes[D];
}

type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsTypedArray;
  new (length: number): SafetensorsTypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** Constructor of the storage array of each dtype; the keys are also the list of known dtypes. */
const ARRAY_CTORS: Record<SafetensorsDtype, TypedArrayCtor> = {
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  F64: Float64Array,
  I32: Int32Array,
  I64: BigInt64Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** All dtypes lightclip understands, in the order error messages list them. */
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.keys(ARRAY_CTORS) as SafetensorsDtype[];

/** Whether `name` is a dtype lightclip understands. */
export function isSafetensorsDtype(name: unknown): name is SafetensorsDtype {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(ARRAY_CTORS, name);
}

/** Bytes per element of `dtype`. */
export function dtypeByteSize(dtype: SafetensorsDtype): number {
  return ARRAY_CTORS[dtype].BYTES_PER_ELEMENT;
}

/** Whether `data` is the storage array `dtype` expects (e.g. `Uint16Array` for F16). */
export function isArrayOfDtype(dtype: SafetensorsDtype, data: unknown): boolean {
  return data instanceof ARRAY_CTORS[dtype];
}

/** Name of the storage array of `dtype`, for error messages. */
export function arrayTypeName(dtype: SafetensorsDtype): string {
  return ARRAY_CTORS[dtype].name;
}

/** Whether this machine stores numbers little-endian (safetensors data is always little-endian). */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reverses the bytes of every `size`-byte element in place: converts between the file's
 * little-endian order and a big-endian host's order. Never called on little-endian hosts.
 */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Typed array of `dtype` over `length` elements of `bytes` starting at `byteOffset`.
 * Shares memory with `bytes` when the start is aligned to the element size (the usual
 * case: `readFile` buffers start at offset 0 and the header is padded to 8 bytes), and
 * copies otherwise, because typed arrays cannot start at an unaligned offset.
 */
export function viewAs(dtype: SafetensorsDtype, bytes: Uint8Array, byteOffset: number, length: number): SafetensorsTypedArray {
  const ctor = ARRAY_CTORS[dtype];
  const size = ctor.BYTES_PER_ELEMENT;
  const start = bytes.byteOffset + byteOffset;
  if (HOST_IS_LITTLE_ENDIAN && start % size === 0) return new ctor(bytes.buffer, start, length);
  const copy = new Uint8Array(length * size);
  copy.set(bytes.subarray(byteOffset, byteOffset + length * size));
  if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, size);
  return new ctor(copy.buffer, 0, length);
}

let f16Table: Float32Array | undefined;

/**
 * IEEE 754 binary16 → float32, exactly (every half value is representable in float32):
 * 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits; exponent 0 is subnormal
 * (mantissa·2⁻²⁴), exponent 31 is ±Infinity or NaN. A 65,536-entry table (256 KB, built on
 * first use) makes the conversion a lookup.
 */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0) f16Table[h] = sign * mant * 2 ** -24;
      else if (exp === 31) f16Table[h] = mant === 0 ? sign * Infinity : NaN;
      else f16Table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
    }
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16Table[bits[i]!]!;
  return out;
}

/**
 * bfloat16 → float32, exactly: bfloat16 is the upper half of a float32, so the bits are
 * shifted into the high 16 bits of a 32-bit word and reinterpreted.
 */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
  return new Float32Array(words.buffer);
}

/**
 * Converts one stored tensor to a tfjs tensor. tfjs has only float32, int32 and bool, so:
 * - F32 → float32 and I32 → int32 unchanged; BOOL → bool;
 * - F16 and BF16 → float32, exactly (every half/bfloat value is a float32);
 * - F64 → float32, rounded to nearest (magnitudes above ~3.4e38 become ±Infinity);
 * - I8 and U8 → int32, exactly;
 * - I64 → int32, exactly when every value lies in [-2³¹, 2³¹ − 1]; otherwise an error,
 *   because wrapping would silently corrupt ids or counters.
 * @param what names the tensor and file in the error message.
 * @throws Error when an I64 value does not fit in int32.
 */
export function rawToTfTensor(raw: RawTensor, what: string): tf.Tensor {
  const shape = [...raw.shape];
  switch (raw.dtype) {
    case 'F32':
      return tf.tensor(raw.data as Float32Array, shape, 'float32');
    case 'I32':
      return tf.tensor(raw.data as Int32Array, shape, 'int32');
    case 'BOOL':
      return tf.tensor(raw.data as Uint8Array, shape, 'bool');
    case 'F16':
      return tf.tensor(float16ToFloat32(raw.data as Uint16Array), shape, 'float32');
    case 'BF16':
      return tf.tensor(bfloat16ToFloat32(raw.data as Uint16Array), shape, 'float32');
    case 'F64':
      return tf.tensor(Float32Array.from(raw.data as Float64Array), shape, 'float32');
    case 'I8':
    case 'U8':
      return tf.tensor(Int32Array.from(raw.data as Int8Array | Uint8Array), shape, 'int32');
    case 'I64': {
      const src = raw.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i]!;
        if (v < -2147483648n || v > 2147483647n) {
          throw new Error(`${what}: I64 value ${v} at index ${i} does not fit in int32 (tfjs has no int64)`);
        }
        out[i] = Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
  }
}
