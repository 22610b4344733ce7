import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { create } from '../../core/registry.js';
import { tf } from '../../core/tf.js';
import { ImageTextFolderDataModule, type ImageTextFolderOptions } from '../../datamodules/folder.js';
import { epochOrder } from '../../datamodules/sampler.js';
import type { ImageTextBatch } from '../../datamodules/types.js';
import { fakeTokenizer, fromRaw, noise, put, removeDir, solid, tempDir } from './helpers.js';

const tokenizer = fakeTokenizer(16);
let root: string;
let clean: string;
let corrupt: string;

/** Captions `<stem> #k` for k < n, one per line. */
function captionsOf(stem: string, n: number): string {
  return Array.from({ length: n }, (_, k) => `${stem} #${k}`).join('\n');
}

function dm(folder: string, extra: Partial<ImageTextFolderOptions> = {}): ImageTextFolderDataModule {
  return new ImageTextFolderDataModule({ folder, batchSize: 2, imageSize: 16, seed: 7, tokenizer, log: null, ...extra });
}

/** Iterates one epoch, returning plain copies of every batch and disposing the tensors. */
async function collect(it: AsyncIterable<ImageTextBatch>): Promise<{ captions: string[][]; paths: string[][]; shapes: number[][]; images: Float32Array[]; texts: Int32Array[] }> {
  const out = { captions: [] as string[][], paths: [] as string[][], shapes: [] as number[][], images: [] as Float32Array[], texts: [] as Int32Array[] };
  for await (const b of it) {
    expect(b.images.dtype).toBe('float32');
    expect(b.texts.dtype).toBe('int32');
    out.shapes.push([...b.images.shape, ...b.texts.shape]);
    out.images.push(b.images.dataSync() as Float32Array);
    out.texts.push(b.texts.dataSync() as Int32Array);
    out.captions.push(b.captions);
    out.paths.push(b.paths.map((p) => path.basename(p)));
    tf.dispose([b.images, b.texts]);
  }
  return out;
}

beforeAll(async () => {
  root = await tempDir();
  clean = path.join(root, 'clean');
  for (let i = 0; i < 7; i++) {
    await put(clean, `imgs/${i % 2 ? 'odd' : 'even'}/s${i}.png`, await fromRaw(40, 30, noise(40, 30, i + 1)));
    await put(clean, `caps/s${i}.txt`, captionsOf(`s${i}`, 5));
  }
  corrupt = path.join(root, 'corrupt');
  for (let i = 0; i < 5; i++) {
    await put(corrupt, `c${i}.jpg`, await solid(40, 30, [i * 40, 100, 200], 'jpeg'));
    await put(corrupt, `c${i}.txt`, `caption ${i}`);
  }
  await put(corrupt, 'c1.jpg', new Uint8Array(500).map((_, i) => (i * 97 + 13) & 255)); // random bytes, .jpg name
});
afterAll(async () => {
  await removeDir(root);
});

describe('ImageTextFolderDataModule', () => {
  it('train batches: shapes, dtypes, dropLast, number of batches; tokens match captions', async () => {
    const m = dm(clean);
    await m.setup('fit');
    const loader = m.trainDataloader();
    expect(loader.length).toBe(3); // 7 samples, batch 2, drop last
    const got = await collect(loader);
    expect(got.shapes).toEqual([[2, 16, 16, 3, 2, 16], [2, 16, 16, 3, 2, 16], [2, 16, 16, 3, 2, 16]]);
    got.captions.forEach((caps, b) => caps.forEach((c, i) => {
      expect(tokenizer.decode(got.texts[b]!.subarray(i * 16, (i + 1) * 16))).toBe(c);
      expect(c.startsWith(got.paths[b]![i]!.replace('.png', ' #'))).toBe(true); // caption belongs to its image
    }));
    expect(new Set(got.paths.flat()).size).toBe(6);
    expect(m.valDataloader()).toBeNull();
    await m.teardown('fit');
  });

  it('keeps the last short batch when dropLast is false; val: eval transform, folder order, no drop', async () => {
    const m = dm(clean, { dropLast: false, valFolder: clean, batchSize: 3 });
    await m.setup('fit');
    expect(m.trainDataloader().length).toBe(3);
    expect((await collect(m.trainDataloader())).shapes.map((s) => s[0])).toEqual([3, 3, 1]);
    const val = m.valDataloader()!;
    expect(val.length).toBe(3);
    const v = await collect(val);
    expect(v.paths.flat()).toEqual(['s0.png', 's2.png', 's4.png', 's6.png', 's1.png', 's3.png', 's5.png']); // imgs/even then imgs/odd
    val.setEpoch(5); // validation captions do not follow the epoch
    expect((await collect(val)).captions).toEqual(v.captions);
    await m.teardown('fit');
  });

  it('shuffles per epoch and draws captions per epoch, reproducibly from the seed', async () => {
    const run = async (seed: number, epoch: number) => {
      const m = dm(clean, { seed });
      await m.setup('fit');
      const l = m.trainDataloader();
      l.setEpoch(epoch);
      const r = await collect(l);
      return { paths: r.paths.flat(), captions: r.captions.flat(), images: r.images };
    };
    const a0 = await run(7, 0);
    const b0 = await run(7, 0);
    const a1 = await run(7, 1);
    expect(b0.paths).toEqual(a0.paths);
    expect(b0.captions).toEqual(a0.captions);
    expect(b0.images).toEqual(a0.images);
    expect(a1.paths).not.toEqual(a0.paths);
    // Same image in two epochs: with 5 captions each, at least one of 6 samples draws another caption.
    const capOf = (r: typeof a0) => new Map(r.paths.map((p, i) => [p, r.captions[i]]));
    const c0 = capOf(a0);
    const c1 = capOf(a1);
    const common = [...c0.keys()].filter((p) => c1.has(p));
    expect(common.some((p) => c0.get(p) !== c1.get(p))).toBe(true);
    expect((await run(8, 0)).captions).not.toEqual(a0.captions);
  });

  it('skips and counts a corrupt image, refilling the batch; the run goes on', async () => {
    const warnings: string[] = [];
    const m = dm(corrupt, { batchSize: 2, shuffle: false, log: (l) => warnings.push(l) });
    await m.setup('fit');
    const got = await collect(m.trainDataloader());
    expect(got.paths).toEqual([['c0.jpg', 'c2.jpg'], ['c3.jpg', 'c4.jpg']]); // c1 skipped, c2 refills
    expect(m.skippedCorrupt).toBe(1);
    expect(warnings.some((w) => w.includes('c1.jpg'))).toBe(true);
    expect(warnings.some((w) => /epoch 0: skipped 1 corrupt/.test(w))).toBe(true);
    await collect(m.trainDataloader());
    expect(m.skippedCorrupt).toBe(2);
    await m.teardown('fit');
  });

  it('gives each of 2 ranks a disjoint, equal-length shard (padded by wrapping)', async () => {
    for (const size of [10, 7]) {
      const r0 = epochOrder({ size, shuffle: true, seed: 3, epoch: 2, rank: 0, worldSize: 2 });
      const r1 = epochOrder({ size, shuffle: true, seed: 3, epoch: 2, rank: 1, worldSize: 2 });
      expect(r0.indices.length).toBe(Math.ceil(size / 2));
      expect(r1.indices.length).toBe(r0.indices.length);
      expect(new Set([...r0.indices, ...r1.indices])).toEqual(new Set(Array.from({ length: size }, (_, i) => i)));
      const overlap = r0.indices.filter((i) => r1.indices.includes(i));
      expect(overlap.length).toBe(size % 2); // only the wrapped padding repeats
    }
    // DistributedSampler without shuffle: [0..4] padded to [0..4, 0], then every 2nd element.
    expect(epochOrder({ size: 5, shuffle: false, seed: 0, epoch: 0, rank: 0, worldSize: 2 }).indices).toEqual([0, 2, 4]);
    expect(epochOrder({ size: 5, shuffle: false, seed: 0, epoch: 0, rank: 1, worldSize: 2 }).indices).toEqual([1, 3, 0]);
    expect(epochOrder({ size: 2, shuffle: false, seed: 0, epoch: 0, rank: 2, worldSize: 5 }).indices).toEqual([0]);
    const paths: string[][] = [];
    for (const rank of [0, 1]) {
      const m = dm(clean, { rank, worldSize: 2, batchSize: 2, dropLast: false });
      await m.setup('fit');
      const l = m.trainDataloader();
      expect(l.length).toBe(2); // ceil(7 / 2) = 4 samples per rank
      paths.push((await collect(l)).paths.flat());
    }
    expect(paths[0]!.length).toBe(4);
    expect(paths[1]!.length).toBe(4);
    expect(new Set([...paths[0]!, ...paths[1]!]).size).toBe(7);
  });

  it('decode workers give the same batches as numWorkers 0', async () => {
    const a = dm(clean, { numWorkers: 0 });
    const b = dm(clean, { numWorkers: 2, prefetchBatches: 1 });
    await a.setup('fit');
    await b.setup('fit');
    const ra = await collect(a.trainDataloader());
    const rb = await collect(b.trainDataloader());
    expect(rb.paths).toEqual(ra.paths);
    expect(rb.captions).toEqual(ra.captions);
    expect(rb.texts).toEqual(ra.texts);
    rb.images.forEach((img, i) => expect(Buffer.from(img.buffer).equals(Buffer.from(ra.images[i]!.buffer))).toBe(true));
    await b.teardown('fit');
  });

  it('leaks no tensors over an epoch, nor when the loop stops early', async () => {
    const m = dm(clean, { numWorkers: 1 });
    await m.setup('fit');
    const before = tf.memory().numTensors;
    await collect(m.trainDataloader());
    for await (const b of m.trainDataloader()) {
      tf.dispose([b.images, b.texts]);
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
    await m.teardown('fit');
  });

  it('stateDict saves epoch and generator state; loadStateDict restores them', async () => {
    const m = dm(clean);
    await m.setup('fit');
    const l = m.trainDataloader();
    l.setEpoch(3);
    const first = await collect(l);
    const state = m.stateDict();
    expect(state.epoch).toBe(3);
    expect(state.generator).toHaveLength(4);
    const m2 = dm(clean);
    m2.loadStateDict(JSON.parse(JSON.stringify(state)) as Record<string, unknown>);
    expect(m2.stateDict()).toEqual(state);
    await m2.setup('fit');
    expect((await collect(m2.trainDataloader())).captions).toEqual(first.captions); // resumes epoch 3
  });

  it('splits off a seeded, disjoint validation fraction', async () => {
    const m = dm(clean, { valFraction: 0.3 });
    await m.setup('fit');
    const again = dm(clean, { valFraction: 0.3 });
    await again.setup('fit');
    expect(m.valPairs.length).toBe(2);
    expect(m.trainPairs.length).toBe(5);
    expect(again.valPairs).toEqual(m.valPairs);
    const trainSet = new Set(m.trainPairs.map((p) => p.image));
    expect(m.valPairs.every((p) => !trainSet.has(p.image))).toBe(true);
  });

  it('is registered as "folder" and takes CLI snake_case options', async () => {
    const m = create<ImageTextFolderDataModule>('datamodule', 'folder', { folder: clean, batch_size: 4, image_size: 8, tokenizer, log: null });
    await m.setup('fit');
    expect(m.trainDataloader().length).toBe(1);
  });

  it('user errors are MisconfigurationErrors naming the flag', async () => {
    await expect(dm(path.join(root, 'missing')).setup('fit')).rejects.toThrow(/`--folder` ".*missing" does not exist/);
    expect(() => dm(clean, { batchSize: 0 })).toThrow(/--batch_size/);
    expect(() => dm(clean, { numWorkers: -2 })).toThrow(/--num_workers/);
    expect(() => dm(clean, { valFraction: 1.5 })).toThrow(/--val_fraction/);
    expect(() => dm(clean, { valFolder: clean, valFraction: 0.1 })).toThrow(MisconfigurationError);
    expect(() => dm(clean, { rank: 2, worldSize: 2 })).toThrow(/rank/);
    await expect(dm(clean, { batchSize: 8 }).setup('fit')).rejects.toThrow(/--batch_size/);
    expect(() => dm(clean).trainDataloader()).toThrow(/setup/);
  });
});
