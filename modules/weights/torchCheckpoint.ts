/**
 * Reads PyTorch checkpoints (`pytorch_model.bin`, `.pt`, `.pth`) without executing their
 * pickles, in the spirit of `torch.load(weights_only=True)`:
 *
 * - the zip format of torch ≥ 1.6: `<archive>/data.pkl` (the object graph),
 *   `<archive>/data/<key>` (raw storage bytes), `<archive>/byteorder` ("little"/"big");
 * - the legacy format of older torch: a magic-number pickle, a protocol pickle, a sys-info
 *   pickle, the object pickle, a pickle of storage keys, then each storage as an int64
 *   element count followed by its bytes.
 *
 * The object pickle may only name the globals torch uses to rebuild tensors and plain
 * containers (see {@link TORCH_ALLOWED_GLOBALS}); anything else is refused by name before
 * anything is applied. Tensors come back as {@link RawTensor}s (safetensors dtypes), which
 * `rawTensorsToTf` turns into tfjs tensors.
 */
import { readFile } from 'node:fs/promises';
import { dtypeByteSize, swapBytes, viewAs, type RawTensor, type SafetensorsDtype } from '../../core/checkpoint/dtypes.js';
import {
  PickleDict,
  PickleGlobal,
  PickleObject,
  PickleFormatError,
  PickleTuple,
  unpickle,
  UnsafePickleError,
  type PickleValue,
  type UnpicklerHooks,
  type UnpickleResult,
} from './unpickler.js';
import { looksLikeZip, readFileHead, ZipArchive } from './zip.js';

/** A checkpoint that is readable as a pickle but not as torch tensors (bad storage reference, unsupported dtype). */
export class TorchCheckpointError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`Cannot read PyTorch checkpoint ${file}: ${detail}`);
    this.name = 'TorchCheckpointError';
  }
}

/** Element types of torch's storage classes; Short (int16) storages are widened to I32 on read. */
const STORAGE_DTYPES: Record<string, SafetensorsDtype | 'I16'> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};

/** A storage class named in a persistent id (`torch.FloatStorage`). */
class StorageType extends PickleObject {
  constructor(readonly dtype: SafetensorsDtype | 'I16') {
    super();
  }
}

/** A reference to storage bytes: the key of its zip entry (or legacy record) and an element offset for legacy views. */
class StorageRef extends PickleObject {
  constructor(
    readonly key: string,
    readonly dtype: SafetensorsDtype | 'I16',
    readonly viewOffset: number,
  ) {
    super();
  }
}

/** A tensor as described by `_rebuild_tensor_v2`: storage, element offset, size and stride. */
class TensorRef extends PickleObject {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
}

function ints(v: PickleValue, what: string): number[] {
  const items = v instanceof PickleTuple ? v.items : Array.isArray(v) ? v : null;
  if (items === null || !items.every((x) => typeof x === 'number' && Number.isSafeInteger(x))) {
    throw new Error(`${what} must be a tuple of integers`);
  }
  return items as number[];
}

function rebuildTensor(args: readonly PickleValue[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new Error('_rebuild_tensor: the first argument is not a storage');
  if (typeof offset !== 'number') throw new Error('_rebuild_tensor: storage_offset must be an integer');
  return new TensorRef(storage, offset + storage.viewOffset, ints(size ?? null, 'size'), ints(stride ?? null, 'stride'));
}

function typeMarker(module: string, name: string): PickleGlobal {
  return new PickleGlobal(module, name, () => {
    throw new Error(`${module}.${name} is only accepted as a type argument, not called`);
  });
}

/** Builds the allowlist; each handler only shuffles data, none runs anything external. */
function allowedGlobals(): { globals: Map<string, PickleGlobal>; storages: Map<string, StorageType> } {
  const globals = new Map<string, PickleGlobal>();
  const storages = new Map<string, StorageType>();
  const add = (module: string, name: string, call: (args: readonly PickleValue[]) => PickleValue): void => {
    globals.set(`${module}.${name}`, new PickleGlobal(module, name, call));
  };
  add('torch._utils', '_rebuild_tensor_v2', rebuildTensor);
  add('torch._utils', '_rebuild_tensor', rebuildTensor);
  // Parameters unpickle to their data: requires_grad and hooks mean nothing here.
  add('torch._utils', '_rebuild_parameter', (args) => args[0] ?? null);
  add('torch._utils', '_rebuild_parameter_with_state', (args) => args[0] ?? null);
  add('torch._tensor', '_rebuild_from_type_v2', (args) => {
    const [fn, , fnArgs] = args;
    if (!(fn instanceof PickleGlobal) || !(fnArgs instanceof PickleTuple)) throw new Error('_rebuild_from_type_v2: malformed arguments');
    return fn.call(fnArgs.items);
  });
  add('collections', 'OrderedDict', (args) => {
    const d = new PickleDict();
    const pairs = args[0];
    if (Array.isArray(pairs)) {
      for (const p of pairs) if (p instanceof PickleTuple && typeof p.items[0] === 'string') d.entries.set(p.items[0], p.items[1] ?? null);
    }
    return d;
  });
  add('torch', 'Size', (args) => args[0] ?? new PickleTuple([]));
  // Protocol 2 pickles `bytes` as _codecs.encode(text, 'latin1'): pure data, no side effects.
  add('_codecs', 'encode', (args) => Uint8Array.from(Buffer.from(String(args[0] ?? ''), 'latin1')));
  globals.set('torch.Tensor', typeMarker('torch', 'Tensor'));
  globals.set('torch.nn.parameter.Parameter', typeMarker('torch.nn.parameter', 'Parameter'));
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    const marker = new StorageType(dtype);
    for (const module of name === 'UntypedStorage' ? ['torch', 'torch.storage'] : ['torch']) {
      add(module, name, () => marker);
      // The storage class itself travels inside the persistent id; it stands for its dtype.
      storages.set(`${module}.${name}`, marker);
    }
  }
  return { globals, storages };
}

const { globals: ALLOWED, storages: storageTypes } = allowedGlobals();

/** `module.name` of every global a torch checkpoint may reference. */
export const TORCH_ALLOWED_GLOBALS: readonly string[] = [...ALLOWED.keys()];

/**
 * Unpickles with the torch allowlist; a malformed argument list inside an allowlisted call
 * (a plain Error from a handler) is reported as a TorchCheckpointError naming the file.
 */
function unpickleTorch(bytes: Uint8Array, hooks: UnpicklerHooks, file: string, offset = 0): UnpickleResult {
  try {
    return unpickle(bytes, hooks, file, offset);
  } catch (err) {
    if (err instanceof UnsafePickleError || err instanceof PickleFormatError || err instanceof TorchCheckpointError) throw err;
    throw new TorchCheckpointError(file, (err as Error).message);
  }
}

function hooksFor(file: string, onStorage: (pid: PickleTuple) => StorageRef): UnpicklerHooks {
  return {
    findGlobal(module, name) {
      const g = ALLOWED.get(`${module}.${name}`);
      if (!g) throw new UnsafePickleError(file, `${module}.${name}`, TORCH_ALLOWED_GLOBALS);
      return g;
    },
    persistentLoad(pid) {
      if (!(pid instanceof PickleTuple) || pid.items[0] !== 'storage') throw new TorchCheckpointError(file, 'a persistent id is not a storage reference');
      return onStorage(pid);
    },
  };
}

/** ('storage', storage_type, key, location, numel[, view_metadata]) → StorageRef. */
function storageFromPid(file: string, pid: PickleTuple): StorageRef {
  const [, type, key, , , view] = pid.items;
  const st = type instanceof PickleGlobal ? storageTypes.get(type.qualifiedName) : undefined;
  if (!st) throw new TorchCheckpointError(file, `a storage reference has an unsupported storage type`);
  if (typeof key !== 'string') throw new TorchCheckpointError(file, 'a storage key is not a string');
  // Legacy view metadata: (view_key, element offset, view_size) into the root storage.
  const viewOffset = view instanceof PickleTuple && typeof view.items[1] === 'number' ? view.items[1] : 0;
  return new StorageRef(key, st.dtype, viewOffset);
}

/** A storage's bytes in host order, and its element type. */
interface LoadedStorage {
  bytes: Uint8Array;
  dtype: SafetensorsDtype | 'I16';
}

/**
 * Materialises one tensor: a view of the storage when it is contiguous and aligned, a
 * strided copy into a contiguous array otherwise (transposed or sliced views).
 */
function materialise(file: string, name: string, t: TensorRef, storage: LoadedStorage): RawTensor {
  const elSize = storage.dtype === 'I16' ? 2 : dtypeByteSize(storage.dtype);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const capacity = storage.bytes.length / elSize;
  if (t.shape.length !== t.stride.length) throw new TorchCheckpointError(file, `tensor \`${name}\` has ${t.shape.length} sizes but ${t.stride.length} strides`);
  let maxIndex = t.offset;
  for (let d = 0; d < t.shape.length; d++) if (t.shape[d]! > 0) maxIndex += (t.shape[d]! - 1) * t.stride[d]!;
  if (numel > 0 && (t.offset < 0 || maxIndex >= capacity || t.stride.some((s) => s < 0))) {
    throw new TorchCheckpointError(file, `tensor \`${name}\` [${t.shape.join(', ')}] reaches element ${maxIndex} of a ${capacity}-element storage`);
  }
  let bytes: Uint8Array;
  let byteOffset: number;
  if (isContiguous(t.shape, t.stride)) {
    bytes = storage.bytes;
    byteOffset = t.offset * elSize;
  } else {
    bytes = new Uint8Array(numel * elSize);
    byteOffset = 0;
    const index = new Array<number>(t.shape.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let src = t.offset;
      for (let d = 0; d < index.length; d++) src += index[d]! * t.stride[d]!;
      bytes.set(storage.bytes.subarray(src * elSize, (src + 1) * elSize), i * elSize);
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d]! < t.shape[d]!) break;
        index[d] = 0;
      }
    }
  }
  if (storage.dtype === 'I16') {
    const v = new Int16Array(bytes.buffer.slice(bytes.byteOffset + byteOffset, bytes.byteOffset + byteOffset + numel * 2));
    return { dtype: 'I32', shape: t.shape, data: Int32Array.from(v) };
  }
  return { dtype: storage.dtype, shape: t.shape, data: viewAs(storage.dtype, bytes, byteOffset, numel) } as RawTensor;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/**
 * Flattens the unpickled object into `dotted.name → tensor`: nested dicts (a Lightning
 * checkpoint's `state_dict`, a `{model: ...}` wrapper) join their keys with '.', lists
 * use indices; non-tensor leaves (epoch counters, strings) are skipped.
 */
function collectTensors(value: PickleValue, prefix: string, out: Array<[string, TensorRef]>): void {
  if (value instanceof TensorRef) {
    out.push([prefix, value]);
  } else if (value instanceof PickleDict) {
    for (const [k, v] of value.entries) collectTensors(v, prefix ? `${prefix}.${String(k)}` : String(k), out);
  } else if (Array.isArray(value) || value instanceof PickleTuple) {
    const items = Array.isArray(value) ? value : value.items;
    items.forEach((v, i) => collectTensors(v, prefix ? `${prefix}.${i}` : String(i), out));
  }
}

function swapIfNeeded(bytes: Uint8Array, dtype: SafetensorsDtype | 'I16', bigEndian: boolean): Uint8Array {
  if (!bigEndian) return bytes;
  const copy = Uint8Array.from(bytes);
  swapBytes(copy, dtype === 'I16' ? 2 : dtypeByteSize(dtype));
  return copy;
}

async function readZipCheckpoint(file: string): Promise<Record<string, RawTensor>> {
  const zip = await ZipArchive.open(file);
  try {
    const pkl = zip.names().find((n) => n.endsWith('data.pkl') && n.split('/').length === 2);
    if (!pkl) throw new TorchCheckpointError(file, `no <archive>/data.pkl entry (entries: ${zip.names().slice(0, 8).join(', ')})`);
    const prefix = pkl.slice(0, -'data.pkl'.length);
    const orderEntry = zip.entries.has(`${prefix}byteorder`) ? (await zip.read(`${prefix}byteorder`)).toString('utf8').trim() : 'little';
    const bigEndian = orderEntry === 'big';
    const { value } = unpickleTorch(await zip.read(pkl), hooksFor(file, (pid) => storageFromPid(file, pid)), file);
    const refs: Array<[string, TensorRef]> = [];
    collectTensors(value, '', refs);
    const storages = new Map<string, LoadedStorage>();
    const out: Record<string, RawTensor> = {};
    for (const [name, t] of refs) {
      let s = storages.get(t.storage.key);
      if (!s) {
        const entry = `${prefix}data/${t.storage.key}`;
        if (!zip.entries.has(entry)) throw new TorchCheckpointError(file, `tensor \`${name}\` references missing storage entry ${entry}`);
        s = { bytes: swapIfNeeded(await zip.read(entry), t.storage.dtype, bigEndian), dtype: t.storage.dtype };
        storages.set(t.storage.key, s);
      }
      out[name] = materialise(file, name, t, s);
    }
    return out;
  } finally {
    await zip.close();
  }
}

async function readLegacyCheckpoint(file: string): Promise<Record<string, RawTensor>> {
  const bytes = new Uint8Array(await readFile(file));
  const refs: Array<[string, TensorRef]> = [];
  const byKey = new Map<string, StorageRef>();
  const plain = hooksFor(file, () => {
    throw new TorchCheckpointError(file, 'unexpected storage reference in the header');
  });
  const magic = unpickleTorch(bytes, plain, file, 0);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) throw new TorchCheckpointError(file, 'not a torch checkpoint (bad magic number)');
  const protocol = unpickleTorch(bytes, plain, file, magic.end);
  const sysInfo = unpickleTorch(bytes, plain, file, protocol.end);
  const little = sysInfo.value instanceof PickleDict ? sysInfo.value.entries.get('little_endian') !== false : true;
  const main = unpickleTorch(
    bytes,
    hooksFor(file, (pid) => {
      const ref = storageFromPid(file, pid);
      byKey.set(ref.key, ref);
      return ref;
    }),
    file,
    sysInfo.end,
  );
  collectTensors(main.value, '', refs);
  const keys = unpickleTorch(bytes, plain, file, main.end);
  if (!Array.isArray(keys.value)) throw new TorchCheckpointError(file, 'the storage key list is missing');
  const storages = new Map<string, LoadedStorage>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value) {
    const ref = byKey.get(String(key));
    if (!ref) throw new TorchCheckpointError(file, `storage ${String(key)} is listed but never referenced`);
    const elSize = ref.dtype === 'I16' ? 2 : dtypeByteSize(ref.dtype);
    if (pos + 8 > bytes.length) throw new TorchCheckpointError(file, `storage ${ref.key} is truncated`);
    const n = Number(view.getBigInt64(pos, little));
    const start = pos + 8;
    if (start + n * elSize > bytes.length) throw new TorchCheckpointError(file, `storage ${ref.key} is truncated`);
    storages.set(ref.key, { bytes: swapIfNeeded(bytes.slice(start, start + n * elSize), ref.dtype, !little), dtype: ref.dtype });
    pos = start + n * elSize;
  }
  const out: Record<string, RawTensor> = {};
  for (const [name, t] of refs) {
    const s = storages.get(t.storage.key);
    if (!s) throw new TorchCheckpointError(file, `tensor \`${name}\` references storage ${t.storage.key}, which the file does not contain`);
    out[name] = materialise(file, name, t, s);
  }
  return out;
}

/**
 * Reads a PyTorch checkpoint's tensors without executing code.
 * @param file a `.bin`/`.pt`/`.pth` written by `torch.save` (zip or legacy format).
 * @returns tensors by dotted name (nested dicts flattened), as raw little-endian arrays.
 * @throws UnsafePickleError naming the file and the refused global when the pickle names
 *   anything but tensor-rebuilding functions and containers (nothing is executed).
 * @throws TorchCheckpointError / PickleFormatError / ZipFormatError for malformed files.
 * @example
 * const sd = await readTorchCheckpoint('pytorch_model.bin');
 * sd['embeddings.word_embeddings.weight'].shape; // [30522, 768]
 */
export async function readTorchCheckpoint(file: string): Promise<Record<string, RawTensor>> {
  const head = await readFileHead(file);
  if (looksLikeZip(head)) return readZipCheckpoint(file);
  if (head[0] === 0x80) return readLegacyCheckpoint(file);
  throw new TorchCheckpointError(file, 'neither a torch zip archive nor a legacy torch pickle (wrong file type?)');
}
