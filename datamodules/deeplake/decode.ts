/** Stored sample bytes → values: numbers (typed arrays), text, JSON with deeplake's custom types. */
import { DTYPES } from './meta.js';

export type NumericArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

/** IEEE half → float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * A typed array over little-endian `bytes` of `dtype` (copied, so it is aligned). float16
 * becomes Float32Array; bool becomes Uint8Array of 0/1.
 */
export function toTypedArray(bytes: Uint8Array, dtype: string, what: string): NumericArray {
  const t = DTYPES[dtype];
  if (!t) throw new Error(`${what}: unsupported dtype ${JSON.stringify(dtype)}`);
  if (bytes.length % t.size !== 0) throw new Error(`${what}: ${bytes.length} bytes is not a whole number of ${dtype} values`);
  const copy = bytes.slice().buffer;
  const n = bytes.length / t.size;
  switch (t.array) {
    case 'bool': return new Uint8Array(copy).map((v) => (v ? 1 : 0));
    case 'u8': return new Uint8Array(copy);
    case 'i8': return new Int8Array(copy);
    case 'u16': return new Uint16Array(copy);
    case 'i16': return new Int16Array(copy);
    case 'u32': return new Uint32Array(copy);
    case 'i32': return new Int32Array(copy);
    case 'u64': return new BigUint64Array(copy);
    case 'i64': return new BigInt64Array(copy);
    case 'f32': return new Float32Array(copy);
    case 'f64': return new Float64Array(copy);
    case 'f16': {
      const h = new Uint16Array(copy);
      const out = new Float32Array(n);
      for (let k = 0; k < n; k++) out[k] = halfToFloat(h[k]!);
      return out;
    }
  }
}

/** Plain numbers (BigInts become numbers; exact up to 2^53). */
export function toNumbers(a: NumericArray): number[] {
  return Array.from(a as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * deeplake's JSON decoder (util/json.py HubJsonDecoder): objects
 * `{"_hub_custom_type": "ndarray", "data": base64, "dtype", "shape"}` become
 * `{dtype, shape, data: number[]}`, `"bytes"` becomes a Uint8Array, anything else is kept.
 */
export function parseDeepLakeJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text, (_k, v: unknown) => {
      if (!v || typeof v !== 'object' || !('_hub_custom_type' in v)) return v;
      const o = v as { _hub_custom_type: string; data?: string; dtype?: string; shape?: number[] };
      const raw = typeof o.data === 'string' ? new Uint8Array(Buffer.from(o.data, 'base64')) : new Uint8Array(0);
      if (o._hub_custom_type === 'bytes') return raw;
      if (o._hub_custom_type === 'ndarray' && o.dtype) {
        const dtype = o.dtype.replace(/^[<>|=]/, '');
        const name = ({ u1: 'uint8', i1: 'int8', u2: 'uint16', i2: 'int16', u4: 'uint32', i4: 'int32', u8: 'uint64', i8: 'int64', f2: 'float16', f4: 'float32', f8: 'float64', b1: 'bool' } as Record<string, string>)[dtype] ?? dtype;
        return { dtype: name, shape: o.shape ?? [], data: toNumbers(toTypedArray(raw, name, what)) };
      }
      return v;
    });
  } catch (err) {
    throw new Error(`${what}: invalid JSON sample (${(err as Error).message})`);
  }
}
