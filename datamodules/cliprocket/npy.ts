import { readFile } from 'node:fs/promises';
import { NpArray, numpyPickleHooks } from '../../core/pickle/numpy.js';
import { unpickle } from '../../core/pickle/unpickler.js';
import type { PickleValue } from '../../core/pickle/types.js';

/** A `.npy` file that is not what the reader expects; names the file. */
export class NpyFormatError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'NpyFormatError';
  }
}

/** The header dict of a `.npy` file (`descr`, `fortran_order`, `shape`) and where the data starts. */
export function parseNpyHeader(bytes: Uint8Array, file: string): { descr: string; fortranOrder: boolean; shape: number[]; dataOffset: number; version: number } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new NpyFormatError(file, 'not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let len: number;
  let start: number;
  if (major === 1) {
    len = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyFormatError(file, 'truncated header');
    len = view.getUint32(8, true);
    start = 12;
  } else throw new NpyFormatError(file, `unsupported .npy format version ${major}.${bytes[7]}`);
  if (start + len > bytes.length) throw new NpyFormatError(file, 'truncated header');
  const text = Buffer.from(bytes.subarray(start, start + len)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new NpyFormatError(file, `header is not a numpy header dict: ${JSON.stringify(text.slice(0, 120))}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset: start + len, version: major };
}

/**
 * The items of a 1-D object array saved by `np.save(..., allow_pickle=True)` (clip-rocket's
 * cc3m.npy / cc12m.npy), read through the restricted unpickler with only numpy's
 * reconstructors allowed (core/pickle/numpy.ts). A header that does not describe an object
 * array, or a pickle naming any other global, is refused before anything is built.
 */
export async function readNpyObjectArray(file: string): Promise<PickleValue[]> {
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new NpyFormatError(file, `cannot read (${err.code ?? err.message})`);
  });
  const h = parseNpyHeader(bytes, file);
  if (h.descr !== '|O') throw new NpyFormatError(file, `expected an object array (descr '|O', a pickled list of dicts), got descr ${JSON.stringify(h.descr)}`);
  if (h.shape.length !== 1) throw new NpyFormatError(file, `expected a 1-D object array, got shape (${h.shape.join(', ')})`);
  const { value } = unpickle(bytes, numpyPickleHooks(file), file, h.dataOffset);
  if (!(value instanceof NpArray) || !value.items) throw new NpyFormatError(file, 'the pickle is not a numpy object array');
  if (value.items.length !== h.shape[0]) throw new NpyFormatError(file, `the header says ${h.shape[0]} items, the array holds ${value.items.length}`);
  return value.items;
}
