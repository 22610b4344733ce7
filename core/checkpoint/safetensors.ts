/**
 * The safetensors format (https://github.com/huggingface/safetensors), read and written
 * byte for byte:
 *
 * ```
 * [8 bytes] N, the header length, unsigned 64-bit little-endian
 * [N bytes] JSON header, UTF-8, padded with spaces (0x20) to a multiple of 8:
 *           {"__metadata__": {string: string},            (optional)
 *            "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * [rest]    raw little-endian tensor data; offsets are relative to the start of this section
 * ```
 *
 * lightclip writes the tensors contiguously in header order (the order of the input
 * record's keys), with `__metadata__` first, as the reference writer does.
 */
import { promises as fs } from 'node:fs';
import { tf } from '../tf.js';
import { atomicWriteFile } from './atomic.js';
import {
  arrayTypeName,
  dtypeByteSize,
  HOST_IS_LITTLE_ENDIAN,
  isArrayOfDtype,
  isSafetensorsDtype,
  rawToTfTensor,
  SAFETENSORS_DTYPES,
  swapBytes,
  viewAs,
  type RawTensor,
  type SafetensorsDtype,
} from './dtypes.js';

export {
  bfloat16ToFloat32,
  float16ToFloat32,
  SAFETENSORS_DTYPES,
  type RawTensor,
  type SafetensorsArrayTypes,
  type SafetensorsDtype,
  type SafetensorsTypedArray,
} from './dtypes.js';

/** Tensors to write: raw typed arrays with a safetensors dtype, or tfjs tensors (float32 → F32, int32 → I32, bool → BOOL). */
export type SafetensorsInput = Record<string, RawTensor | tf.Tensor>;

/** A decoded file: tensors in header order, and the `__metadata__` map (empty when absent). */
export interface DecodedSafetensors {
  tensors: Record<string, RawTensor>;
  metadata: Record<string, string>;
}

/** A file (or buffer) that is not valid safetensors; the message names the file and what is wrong. */
export class SafetensorsError extends Error {
  constructor(
    /** The file (or `<buffer>`) that failed to parse. */
    readonly file: string,
    detail: string,
  ) {
    super(`Invalid safetensors file ${file}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

const METADATA_KEY = '__metadata__';
// The reference implementation refuses headers above 100 MB; a larger length almost always
// means the file is something else (a PyTorch pickle, a zip) read as safetensors.
const MAX_HEADER_BYTES = 100_000_000;
const TF_TO_SAFETENSORS: Partial<Record<string, SafetensorsDtype>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

interface PlannedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  byteLength: number;
  source: RawTensor | tf.Tensor;
}

/**
 * Tells tfjs tensors from raw ones without touching `data`: tfjs's own `instanceof
 * tf.Tensor` is duck-typed and reads `.data`, which for a raw tensor may be a getter that
 * computes (or fails), and must only run when the data are written.
 */
function isTfTensor(x: RawTensor | tf.Tensor): x is tf.Tensor {
  return 'dataSync' in x && 'dispose' in x;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/** Reads dtype and shape (not data) of each input, so the header can be written before any data is fetched. */
function planTensors(tensors: SafetensorsInput): PlannedTensor[] {
  return Object.entries(tensors).map(([name, source]) => {
    if (name === METADATA_KEY) throw new Error(`safetensors: a tensor cannot be named \`${METADATA_KEY}\` (reserved for metadata)`);
    let dtype: SafetensorsDtype;
    let shape: number[];
    if (isTfTensor(source)) {
      const mapped = TF_TO_SAFETENSORS[source.dtype];
      if (mapped === undefined) throw new Error(`safetensors: tensor \`${name}\` has tfjs dtype ${source.dtype}, which safetensors cannot store`);
      dtype = mapped;
      shape = [...source.shape];
    } else {
      if (!isSafetensorsDtype(source.dtype)) {
        throw new Error(`safetensors: tensor \`${name}\` has unknown dtype ${JSON.stringify(source.dtype)}; expected one of ${SAFETENSORS_DTYPES.join(', ')}`);
      }
      if (!isShape(source.shape)) throw new Error(`safetensors: tensor \`${name}\` has shape ${JSON.stringify(source.shape)}; expected an array of non-negative integers`);
      dtype = source.dtype;
      shape = [...source.shape];
    }
    return { name, dtype, shape, byteLength: numel(shape) * dtypeByteSize(dtype), source };
  });
}

/** The 8-byte length prefix plus the space-padded JSON header. */
function encodeHeader(plan: PlannedTensor[], metadata: Record<string, string> | undefined): Buffer {
  // Compact JSON with keys in the reference writer's order (dtype, shape, data_offsets).
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata value \`${k}\` must be a string, got ${typeof v}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const t of plan) {
    const entry = `{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + t.byteLength}]}`;
    parts.push(`${JSON.stringify(t.name)}:${entry}`);
    offset += t.byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/** Fetches one tensor's elements (only now: tfjs tensors are downloaded one at a time) as little-endian bytes. */
function tensorBytes(t: PlannedTensor): Uint8Array {
  let data: ArrayLike<unknown> & ArrayBufferView;
  if (isTfTensor(t.source)) {
    const values = t.source.dataSync();
    // tfjs keeps bool values as bytes already; the conversion covers backends that do not.
    data = t.dtype === 'BOOL' && !(values instanceof Uint8Array) ? Uint8Array.from(values as ArrayLike<number>) : (values as Float32Array | Int32Array | Uint8Array);
  } else {
    data = t.source.data;
    if (!isArrayOfDtype(t.dtype, data)) {
      throw new Error(`safetensors: tensor \`${t.name}\` (dtype ${t.dtype}) needs its data in a ${arrayTypeName(t.dtype)}, got ${data?.constructor?.name ?? typeof data}`);
    }
  }
  if (data.byteLength !== t.byteLength) {
    throw new Error(`safetensors: tensor \`${t.name}\` has shape [${t.shape.join(', ')}] (${numel(t.shape)} elements) but ${data.length} data elements`);
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return bytes;
  const copy = Uint8Array.from(bytes);
  swapBytes(copy, dtypeByteSize(t.dtype));
  return copy;
}

function* chunks(header: Buffer, plan: PlannedTensor[]): Generator<Uint8Array> {
  yield header;
  for (const t of plan) yield tensorBytes(t);
}

/**
 * Encodes tensors as a safetensors file in memory.
 * @param tensors named tensors, written in key order.
 * @param metadata optional `__metadata__` (string values only).
 * @returns the whole file.
 * @throws Error for unknown dtypes, a shape that does not match the data, or a typed array of the wrong kind.
 * @example
 * encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }, { format: 'pt' })
 */
export function encodeSafetensors(tensors: SafetensorsInput, metadata?: Record<string, string>): Buffer {
  const plan = planTensors(tensors);
  const header = encodeHeader(plan, metadata);
  return Buffer.concat([...chunks(header, plan)]);
}

/**
 * Writes a safetensors file atomically (temp file, fsync, rename; see `atomicWriteFile`).
 * Tensors are fetched and written one at a time, so a model is never held twice in memory.
 */
export async function writeSafetensors(filePath: string, tensors: SafetensorsInput, metadata?: Record<string, string>): Promise<void> {
  const plan = planTensors(tensors);
  await atomicWriteFile(filePath, chunks(encodeHeader(plan, metadata), plan));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a safetensors file held in memory. Tensor data are views into `buf` when aligned
 * (copies otherwise), so keep `buf` unmodified while they are in use.
 * @param buf the whole file.
 * @param file name used in error messages.
 * @throws SafetensorsError naming `file` for truncated data, an unparsable header, unknown
 *   dtypes, shapes that disagree with their byte ranges, and out-of-range or overlapping offsets.
 */
export function decodeSafetensors(buf: Uint8Array, file = '<buffer>'): DecodedSafetensors {
  const fail = (detail: string): never => {
    throw new SafetensorsError(file, detail);
  };
  if (buf.byteLength < 8) fail(`truncated: ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes; this is not a safetensors file (PyTorch .pt/.ckpt pickles must be converted with safetensors' save_file)`);
  }
  const n = Number(headerLen);
  if (8 + n > buf.byteLength) fail(`truncated: the header should be ${n} bytes but only ${buf.byteLength - 8} follow the length prefix`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch (err) {
    fail(`the header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) return fail('the header must be a JSON object');

  const dataStart = 8 + n;
  const dataLength = buf.byteLength - dataStart;
  let metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry) || !Object.values(entry).every((v) => typeof v === 'string')) fail('`__metadata__` must map strings to strings');
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isPlainObject(entry)) return fail(`tensor \`${name}\`: entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isSafetensorsDtype(dtype)) fail(`tensor \`${name}\` has unknown dtype ${JSON.stringify(dtype)}; supported: ${SAFETENSORS_DTYPES.join(', ')}`);
    if (!isShape(shape)) fail(`tensor \`${name}\` has shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
    if (!isShape(offsets) || offsets.length !== 2 || offsets[0]! > offsets[1]!) {
      fail(`tensor \`${name}\` has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    const d = dtype as SafetensorsDtype;
    const s = shape as number[];
    if (end > dataLength) fail(`tensor \`${name}\` has data_offsets [${begin}, ${end}] beyond the ${dataLength}-byte data section (file truncated?)`);
    const expected = numel(s) * dtypeByteSize(d);
    if (end - begin !== expected) fail(`tensor \`${name}\`: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${d} × [${s.join(', ')}] needs ${expected}`);
    entries.push({ name, dtype: d, shape: s, begin, end });
  }

  const byStart = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    const cur = byStart[i]!;
    if (cur.begin < prev.end) fail(`tensors \`${prev.name}\` [${prev.begin}, ${prev.end}] and \`${cur.name}\` [${cur.begin}, ${cur.end}] overlap`);
  }

  const tensors: Record<string, RawTensor> = {};
  for (const e of entries) {
    const data = viewAs(e.dtype, buf, dataStart + e.begin, numel(e.shape));
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data } as RawTensor;
  }
  return { tensors, metadata };
}

/** Reads and parses a safetensors file. @throws SafetensorsError naming the file when it is invalid. */
export async function readSafetensors(filePath: string): Promise<DecodedSafetensors> {
  return decodeSafetensors(await fs.readFile(filePath), filePath);
}

/**
 * Converts decoded tensors to tfjs tensors (see `rawToTfTensor` in dtypes.ts for the
 * dtype conversions: F16/BF16/F64 → float32, I8/U8/I64 → int32). On error no tensor leaks.
 * @param file name used in error messages.
 */
export function rawTensorsToTf(tensors: Record<string, RawTensor>, file = '<buffer>'): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const [name, raw] of Object.entries(tensors)) out[name] = rawToTfTensor(raw, `${file}: tensor \`${name}\``);
  } catch (err) {
    for (const t of Object.values(out)) t.dispose();
    throw err;
  }
  return out;
}

/**
 * Reads a safetensors file (OpenAI/HF weights, or one written by lightclip) as tfjs
 * tensors, keyed by name; F16/BF16/F64 become float32 and I8/U8/I64 int32.
 * @throws SafetensorsError naming the file when it is invalid.
 */
export async function loadSafetensorsAsTensors(filePath: string): Promise<Record<string, tf.Tensor>> {
  const { tensors } = await readSafetensors(filePath);
  return rawTensorsToTf(tensors, filePath);
}
