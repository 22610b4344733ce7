/**
 * The numpy globals a restricted unpickle of `np.save(..., allow_pickle=True)` object arrays
 * needs (CC3M/CC12M metadata), and nothing else: `_reconstruct` + BUILD for the array,
 * `dtype` + BUILD for its dtype, `scalar` for numpy scalar values, `_codecs.encode` (protocol
 * 2 spells bytes that way), `collections.OrderedDict` and argument-less `bytes()`. Each name is
 * resolved when the opcode naming it is read; anything else is refused before it could run.
 */
import { PickleDict, PickleGlobal, PickleObject, PickleTuple, UnsafePickleError, type PickleValue, type UnpicklerHooks } from './types.js';

/** A numpy dtype as far as pickles describe it (`O8`, `<U5`, `<i8`...). */
export class NpDtype extends PickleObject {
  byteOrder = '|';
  constructor(readonly descr: string) {
    super();
  }
  override setState(state: PickleValue): void {
    if (!(state instanceof PickleTuple) || state.items.length < 2) throw new Error('numpy dtype state must be a tuple');
    const order = state.items[1];
    if (typeof order === 'string') this.byteOrder = order;
  }
  get kind(): string {
    return this.descr.replace(/^[<>|=]/, '')[0] ?? '';
  }
  get itemsize(): number {
    return Number(this.descr.replace(/^[<>|=]?[A-Za-z]/, '')) || 0;
  }
  get littleEndian(): boolean {
    return this.byteOrder !== '>';
  }
}

/** A numpy array rebuilt from a pickle: object arrays keep their items; others their raw bytes. */
export class NpArray extends PickleObject {
  shape: number[] = [];
  dtype: NpDtype | null = null;
  fortranOrder = false;
  /** Object arrays: the items. */
  items: PickleValue[] | null = null;
  /** Other dtypes: the raw data. */
  raw: Uint8Array | null = null;

  override setState(state: PickleValue): void {
    if (!(state instanceof PickleTuple)) throw new Error('ndarray state must be a tuple');
    // (version, shape, dtype, is_fortran, data), or without the version in old pickles.
    const s = state.items.length === 5 ? state.items.slice(1) : state.items;
    const [shape, dtype, fortran, data] = s;
    if (!(shape instanceof PickleTuple) || !shape.items.every((d) => typeof d === 'number')) throw new Error('ndarray state: bad shape');
    if (!(dtype instanceof NpDtype)) throw new Error('ndarray state: bad dtype');
    this.shape = shape.items as number[];
    this.dtype = dtype;
    this.fortranOrder = fortran === true;
    if (Array.isArray(data)) this.items = data;
    else if (data instanceof Uint8Array) this.raw = data;
    else if (typeof data === 'string') this.raw = Uint8Array.from(Buffer.from(data, 'latin1'));
    else throw new Error('ndarray state: bad data');
  }
}

/** `numpy.core.multiarray.scalar(dtype, bytes)` as a JavaScript value. */
export function npScalar(dtype: NpDtype, data: PickleValue): PickleValue {
  if (dtype.kind === 'O') return data;
  if (!(data instanceof Uint8Array)) throw new Error(`numpy scalar of ${dtype.descr} needs bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = dtype.littleEndian;
  switch (dtype.kind) {
    case 'U': {
      let s = '';
      for (let i = 0; i + 4 <= data.length; i += 4) {
        const cp = view.getUint32(i, le);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case 'S':
      return data.subarray(0, data.indexOf(0) < 0 ? data.length : data.indexOf(0));
    case 'b':
      return data[0] !== 0;
    case 'i':
    case 'u': {
      const n = data.length;
      const signed = dtype.kind === 'i';
      if (n === 1) return signed ? view.getInt8(0) : view.getUint8(0);
      if (n === 2) return signed ? view.getInt16(0, le) : view.getUint16(0, le);
      if (n === 4) return signed ? view.getInt32(0, le) : view.getUint32(0, le);
      if (n === 8) {
        const v = signed ? view.getBigInt64(0, le) : view.getBigUint64(0, le);
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      break;
    }
    case 'f':
      if (data.length === 4) return view.getFloat32(0, le);
      if (data.length === 8) return view.getFloat64(0, le);
      break;
  }
  throw new Error(`numpy scalar of dtype ${dtype.descr} is not supported`);
}

function needArgs(args: readonly PickleValue[], min: number, max: number, name: string): void {
  if (args.length < min || args.length > max) throw new Error(`${name} called with ${args.length} arguments`);
}

const NDARRAY = new PickleGlobal('numpy', 'ndarray', () => {
  throw new Error('numpy.ndarray may only be passed to _reconstruct');
});

const reconstruct = (module: string): PickleGlobal =>
  new PickleGlobal(module, '_reconstruct', (args) => {
    needArgs(args, 3, 3, '_reconstruct');
    if (args[0] !== NDARRAY) throw new Error('_reconstruct of something other than numpy.ndarray');
    return new NpArray();
  });

const scalar = (module: string): PickleGlobal =>
  new PickleGlobal(module, 'scalar', (args) => {
    needArgs(args, 1, 2, 'scalar');
    if (!(args[0] instanceof NpDtype)) throw new Error('scalar needs a dtype');
    return npScalar(args[0], args[1] ?? null);
  });

const bytesCtor = (module: string): PickleGlobal =>
  new PickleGlobal(module, 'bytes', (args) => {
    if (args.length !== 0) throw new Error('bytes() is only allowed without arguments');
    return new Uint8Array(0);
  });

const NUMPY_GLOBALS: ReadonlyMap<string, PickleGlobal> = new Map(
  [
    reconstruct('numpy.core.multiarray'),
    reconstruct('numpy._core.multiarray'),
    NDARRAY,
    new PickleGlobal('numpy', 'dtype', (args) => {
      needArgs(args, 1, 3, 'dtype');
      if (typeof args[0] !== 'string') throw new Error('dtype needs a type string');
      return new NpDtype(args[0]);
    }),
    scalar('numpy.core.multiarray'),
    scalar('numpy._core.multiarray'),
    new PickleGlobal('_codecs', 'encode', (args) => {
      needArgs(args, 1, 2, '_codecs.encode');
      if (typeof args[0] !== 'string' || (args[1] !== undefined && args[1] !== 'latin1' && args[1] !== 'latin-1')) throw new Error('_codecs.encode is only allowed as (str, "latin1")');
      return Uint8Array.from(Buffer.from(args[0], 'latin1'));
    }),
    new PickleGlobal('collections', 'OrderedDict', (args) => {
      if (args.length !== 0) throw new Error('OrderedDict is only allowed without arguments');
      return new PickleDict();
    }),
    bytesCtor('__builtin__'),
    bytesCtor('builtins'),
  ].map((g) => [g.qualifiedName, g]),
);

/** Hooks for numpy object-array pickles; `source` names the file in errors. */
export function numpyPickleHooks(source: string): UnpicklerHooks {
  return {
    findGlobal(module: string, name: string): PickleGlobal {
      const g = NUMPY_GLOBALS.get(`${module}.${name}`);
      if (!g) throw new UnsafePickleError(source, `${module}.${name}`, [...NUMPY_GLOBALS.keys()], 'numpy reconstructors and containers', DATA_ADVICE);
      return g;
    },
  };
}

const DATA_ADVICE = 'Re-create the file from plain data (dicts, lists, str, bytes, numbers) if it is legitimate.';

/**
 * Plain-data hooks (CoreNet metadata and sample pickles): only what protocol 2 needs to spell
 * bytes (`_codecs.encode(str, 'latin1')`, argument-less `bytes()`); nothing else.
 */
export function plainPickleHooks(source: string): UnpicklerHooks {
  const allowed = ['_codecs.encode', '__builtin__.bytes', 'builtins.bytes'];
  return {
    findGlobal(module: string, name: string): PickleGlobal {
      const key = `${module}.${name}`;
      if (!allowed.includes(key)) throw new UnsafePickleError(source, key, allowed, 'byte-string constructors (the file should hold plain data)', DATA_ADVICE);
      return NUMPY_GLOBALS.get(key)!;
    },
  };
}
