import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensorsAsTensors,
  readSafetensors,
  SafetensorsError,
  writeSafetensors,
  type RawTensor,
} from '../../../core/checkpoint/safetensors.js';
import { tf } from '../../../core/tf.js';

const dir = mkdtempSync(join(tmpdir(), 'lightclip-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Builds a file from a header string and data bytes, padding as the format requires. */
function fileFrom(header: string, data: number[] = []): Buffer {
  const json = Buffer.from(header);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded + data.length, 0x20);
  out.writeBigUInt64LE(BigInt(padded));
  json.copy(out, 8);
  Buffer.from(data).copy(out, 8 + padded);
  return out;
}

describe('safetensors layout', () => {
  it('writes a byte-exact header, padding and data for a known example', () => {
    const buf = encodeSafetensors(
      {
        a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
        b: { dtype: 'I32', shape: [], data: new Int32Array([7]) },
      },
      { format: 'pt' },
    );
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}';
    // 138 characters of JSON, padded with 6 spaces to 144 (the next multiple of 8).
    expect(header.length).toBe(138);
    const expected = Buffer.concat([
      Buffer.from([144, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(header + '      ', 'utf8'),
      Buffer.from([0x00, 0x00, 0x80, 0x3f]), // 1.0f little-endian
      Buffer.from([0x00, 0x00, 0x00, 0x40]), // 2.0f
      Buffer.from([0x07, 0x00, 0x00, 0x00]), // int32 7
    ]);
    expect(buf.length).toBe(8 + 144 + 12);
    expect(buf.equals(expected)).toBe(true);
  });

  it('reads data by offsets, whatever the header order', () => {
    // Another writer may list tensors in a different order from their data (the reference
    // writer sorts by dtype alignment); only data_offsets decide where the bytes are.
    const buf = fileFrom(
      '{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
      [7, 9],
    );
    const { tensors } = decodeSafetensors(buf);
    expect(Object.keys(tensors)).toEqual(['b', 'a']);
    expect(Array.from(tensors['a']!.data as Uint8Array)).toEqual([7]);
    expect(Array.from(tensors['b']!.data as Uint8Array)).toEqual([9]);
  });

  it('omits __metadata__ when there is none and header length is a multiple of 8', () => {
    const buf = encodeSafetensors({ x: { dtype: 'F32', shape: [0], data: new Float32Array(0) } });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(buf.subarray(8, 8 + n).toString().trimEnd()).toBe('{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}');
    expect(decodeSafetensors(buf).metadata).toEqual({});
  });
});

describe('safetensors round trip', () => {
  const cases: RawTensor[] = [
    { dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2, 3.25, 1e-8]) },
    { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
    { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xc040]) },
    { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1e300]) },
    { dtype: 'I32', shape: [3], data: new Int32Array([-5, 0, 2147483647]) },
    { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 40n), 3n]) },
    { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
    { dtype: 'U8', shape: [1, 3], data: new Uint8Array([0, 128, 255]) },
    { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
  ];
  for (const t of cases) {
    it(`round-trips ${t.dtype}`, () => {
      // A 1-byte tensor first makes the next tensor unaligned, exercising the copy path too.
      const buf = encodeSafetensors({ pad: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) }, t });
      const back = decodeSafetensors(buf).tensors['t']!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(back.data.constructor).toBe(t.data.constructor);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    });
  }

  it('writes tfjs tensors as F32/I32/BOOL and loads them back', async () => {
    const file = join(dir, 'tf.safetensors');
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor1d([5, -6], 'int32');
    const c = tf.tensor1d([true, false], 'bool');
    await writeSafetensors(file, { a, b, c }, { note: 'x' });
    const { tensors, metadata } = await readSafetensors(file);
    expect(metadata).toEqual({ note: 'x' });
    expect([tensors['a']!.dtype, tensors['b']!.dtype, tensors['c']!.dtype]).toEqual(['F32', 'I32', 'BOOL']);
    const loaded = await loadSafetensorsAsTensors(file);
    expect(loaded['a']!.shape).toEqual([2, 2]);
    expect(Array.from(loaded['a']!.dataSync())).toEqual([1, 2, 3, 4]);
    expect(loaded['b']!.dtype).toBe('int32');
    expect(Array.from(loaded['b']!.dataSync())).toEqual([5, -6]);
    expect(loaded['c']!.dtype).toBe('bool');
    expect(Array.from(loaded['c']!.dataSync())).toEqual([1, 0]);
    tf.dispose([a, b, c, ...Object.values(loaded)]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects data that does not match the dtype or shape', () => {
    expect(() => encodeSafetensors({ w: { dtype: 'F16', shape: [1], data: new Float32Array([1]) as never } })).toThrow(/`w`.*Uint16Array/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array([1]) } })).toThrow(/`w`.*shape \[3\]/);
    expect(() => encodeSafetensors({ w: { dtype: 'F8' as never, shape: [1], data: new Uint8Array(1) } })).toThrow(/unknown dtype "F8"/);
  });
});

describe('safetensors conversions to tfjs', () => {
  it('reads F16 values exactly as float32', async () => {
    const file = join(dir, 'f16.safetensors');
    // 1, -2, 65504 (max half), 2^-24 (smallest subnormal), 1/3 rounded to half, +Inf, NaN
    const bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00, 0x7e00]);
    writeFileSync(file, encodeSafetensors({ h: { dtype: 'F16', shape: [7], data: bits } }));
    const { h } = await loadSafetensorsAsTensors(file);
    expect(h!.dtype).toBe('float32');
    const v = Array.from(h!.dataSync());
    expect(v.slice(0, 6)).toEqual([1, -2, 65504, 2 ** -24, 0.333251953125, Infinity]);
    expect(Number.isNaN(v[6])).toBe(true);
    h!.dispose();
  });

  it('reads BF16, F64, I64, I8 and U8 with the documented conversions', async () => {
    const file = join(dir, 'conv.safetensors');
    writeFileSync(
      file,
      encodeSafetensors({
        bf: { dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0xc040, 0x4049]) },
        f64: { dtype: 'F64', shape: [2], data: new Float64Array([0.1, 1e300]) },
        i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 2147483647n]) },
        i8: { dtype: 'I8', shape: [1], data: new Int8Array([-7]) },
        u8: { dtype: 'U8', shape: [1], data: new Uint8Array([200]) },
      }),
    );
    const t = await loadSafetensorsAsTensors(file);
    expect(Array.from(t['bf']!.dataSync())).toEqual([1, -3, 3.140625]);
    expect(Array.from(t['f64']!.dataSync())).toEqual([Math.fround(0.1), Infinity]);
    expect(t['i64']!.dtype).toBe('int32');
    expect(Array.from(t['i64']!.dataSync())).toEqual([-3, 2147483647]);
    expect(Array.from(t['i8']!.dataSync())).toEqual([-7]);
    expect(Array.from(t['u8']!.dataSync())).toEqual([200]);
    tf.dispose(Object.values(t));
  });

  it('refuses I64 values outside int32, naming the tensor and file', async () => {
    const file = join(dir, 'big.safetensors');
    writeFileSync(file, encodeSafetensors({ ids: { dtype: 'I64', shape: [1], data: new BigInt64Array([2n ** 33n]) } }));
    await expect(loadSafetensorsAsTensors(file)).rejects.toThrow(/big\.safetensors.*`ids`.*does not fit in int32/);
  });
});

describe('safetensors errors name the file', () => {
  const good = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
  const bad: [string, Buffer, RegExp][] = [
    ['shorter than 8 bytes', Buffer.from([1, 2, 3]), /truncated: 3 bytes/],
    ['a cut header', good.subarray(0, 20), /truncated: the header should be/],
    ['a cut data section', good.subarray(0, good.length - 1), /beyond the 7-byte data section/],
    ['a huge header length', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0x10]), /not a safetensors file/],
    ['bad header JSON', fileFrom('{"w": {'), /not valid UTF-8 JSON/],
    ['a non-object header', fileFrom('[1,2]'), /must be a JSON object/],
    ['an unknown dtype', fileFrom('{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', [0]), /`w` has unknown dtype "F8_E4M3"/],
    ['offsets out of range', fileFrom('{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', [0, 0, 0, 0]), /beyond the 4-byte data section/],
    ['reversed offsets', fileFrom('{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', [0, 0, 0, 0]), /expected \[begin, end\]/],
    ['a size mismatch', fileFrom('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /span 4 bytes but F32 × \[2\] needs 8/],
    [
      'overlapping tensors',
      fileFrom('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}', [0, 0, 0, 0, 0, 0, 0, 0]),
      /`a` \[0, 4\] and `b` \[2, 6\] overlap/,
    ],
    ['bad metadata', fileFrom('{"__metadata__":{"n":1}}'), /`__metadata__` must map strings to strings/],
  ];
  for (const [what, bytes, message] of bad) {
    it(`rejects ${what}`, async () => {
      const file = join(dir, 'corrupt.safetensors');
      writeFileSync(file, bytes);
      const err = await readSafetensors(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('still decodes the good file the broken ones came from', () => {
    expect(Array.from(decodeSafetensors(good).tensors['w']!.data as Float32Array)).toEqual([1, 2]);
  });
});
