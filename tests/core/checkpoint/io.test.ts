import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { atomicWriteFile, loadCheckpointFile, removeCheckpoint, saveCheckpointFile } from '../../../core/checkpoint/io.js';
import { decodeSafetensors, encodeSafetensors, type RawTensor } from '../../../core/checkpoint/safetensors.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { tf } from '../../../core/tf.js';

const root = mkdtempSync(join(tmpdir(), 'lightclip-io-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(name: string): string {
  const d = join(root, name);
  rmSync(d, { recursive: true, force: true });
  return mkdtempSync(d);
}

describe('checkpoint files', () => {
  it('round-trips tensors and JSON through one safetensors file', async () => {
    const dir = freshDir('rt');
    const file = join(dir, 'epoch=0-step=10.ckpt');
    const w = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const step = tf.scalar(10, 'int32');
    const json = { epoch: 0, globalStep: 10, hparams: { lr: 1e-3, name: 'ViT-B/32' }, rng: [1, 2, 3] };
    await saveCheckpointFile(file, { tensors: { 'visual.proj': w, 'optimizer.step': step }, json });

    // It is a plain safetensors file whose metadata carries the JSON under `lightclip`.
    const raw = decodeSafetensors(readFileSync(file));
    expect(Object.keys(raw.tensors)).toEqual(['visual.proj', 'optimizer.step']);
    expect(JSON.parse(raw.metadata['lightclip']!)).toEqual(json);

    const loaded = await loadCheckpointFile(file);
    expect(loaded.json).toEqual(json);
    expect(loaded.tensors['visual.proj']!.shape).toEqual([2, 3]);
    expect(Array.from(loaded.tensors['visual.proj']!.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(loaded.tensors['optimizer.step']!.dtype).toBe('int32');
    tf.dispose([w, step, ...Object.values(loaded.tensors)]);
    expect(readdirSync(dir)).toEqual(['epoch=0-step=10.ckpt']);
  });

  it('leaves the previous file intact and no temp file when a tensor throws midway', async () => {
    const dir = freshDir('crash');
    const file = join(dir, 'last.ckpt');
    await saveCheckpointFile(file, { tensors: { a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }, json: { v: 1 } });
    const before = readFileSync(file);

    // The header and the first tensor reach the temp file before the second tensor's data getter throws.
    const exploding = {
      dtype: 'F32',
      shape: [1],
      get data(): Float32Array {
        throw new Error('device lost');
      },
    } as RawTensor;
    const big: RawTensor = { dtype: 'F32', shape: [4096], data: new Float32Array(4096).fill(2) };
    await expect(saveCheckpointFile(file, { tensors: { big, exploding }, json: { v: 2 } })).rejects.toThrow('device lost');

    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['last.ckpt']);
    const loaded = await loadCheckpointFile(file);
    expect(loaded.json).toEqual({ v: 1 });
    tf.dispose(Object.values(loaded.tensors));
  });

  it('rejects JSON that cannot be serialized before touching the file', async () => {
    const dir = freshDir('json');
    await expect(saveCheckpointFile(join(dir, 'x.ckpt'), { tensors: {}, json: undefined })).rejects.toThrow(/JSON-serializable/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('says clearly when a file is not a lightclip checkpoint', async () => {
    const dir = freshDir('plain');
    const file = join(dir, 'open_clip_model.safetensors');
    writeFileSync(file, encodeSafetensors({ logit_scale: { dtype: 'F32', shape: [], data: new Float32Array([4.6]) } }, { format: 'pt' }));
    const err = await loadCheckpointFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MisconfigurationError);
    expect((err as Error).message).toMatch(/open_clip_model\.safetensors" is not a lightclip checkpoint/);

    await expect(loadCheckpointFile(join(dir, 'missing.ckpt'))).rejects.toThrow(/missing\.ckpt" does not exist/);
    writeFileSync(join(dir, 'junk.ckpt'), 'PK\u0003\u0004 a zip file, not safetensors');
    await expect(loadCheckpointFile(join(dir, 'junk.ckpt'))).rejects.toThrow(/junk\.ckpt/);
  });

  it('removes checkpoints, tolerating files already gone', async () => {
    const dir = freshDir('rm');
    const file = join(dir, 'a.ckpt');
    await saveCheckpointFile(file, { tensors: {}, json: {} });
    await removeCheckpoint(file);
    expect(existsSync(file)).toBe(false);
    await expect(removeCheckpoint(file)).resolves.toBeUndefined();
  });
});

describe('atomicWriteFile', () => {
  it('replaces a file from chunks and cleans up after a failing producer', async () => {
    const dir = freshDir('atomic');
    const file = join(dir, 'f.bin');
    await atomicWriteFile(file, Buffer.from('old'));
    await atomicWriteFile(file, [Buffer.from('ne'), Buffer.from('w')]);
    expect(readFileSync(file, 'utf8')).toBe('new');

    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('partial');
      throw new Error('producer failed');
    }
    await expect(atomicWriteFile(file, failing())).rejects.toThrow('producer failed');
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readdirSync(dir)).toEqual(['f.bin']);
  });
});
