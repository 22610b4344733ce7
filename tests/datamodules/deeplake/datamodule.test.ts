import { cpSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { DeepLakeDataModule, type DeepLakeDataModuleOptions } from '../../../datamodules/deeplake/datamodule.js';
import { DeepLakeWriter } from '../../../datamodules/deeplake/writer.js';
import { clipEvalTransform } from '../../../datamodules/transforms.js';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';
import type { ImageTextBatch } from '../../../datamodules/types.js';
import { fakeTokenizer, noise, removeDir, tempDir } from '../helpers.js';

const FIXTURES = path.resolve(__dirname, '../../fixtures/deeplake');
const tok = fakeTokenizer(64);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});
// the query index cache goes to a folder of this test's own
beforeAll(async () => {
  const d = await tempDir('lightclip-dl-cache-');
  dirs.push(d);
  process.env.LIGHTCLIP_CACHE_DIR = d;
});

const dm = (o: Partial<DeepLakeDataModuleOptions>, logs: string[] = []) =>
  new DeepLakeDataModule({ path: path.join(FIXTURES, 'laion_like'), batchSize: 2, imageSize: 16, tokenizer: tok, shuffle: false, dropLast: false, log: (l) => logs.push(l), ...o });

async function drain(loader: AsyncIterable<ImageTextBatch>): Promise<{ captions: string[]; paths: string[]; batches: number; first?: Float32Array }> {
  const out = { captions: [] as string[], paths: [] as string[], batches: 0, first: undefined as Float32Array | undefined };
  for await (const b of loader) {
    out.batches++;
    expect(b.images.shape.slice(1)).toEqual([16, 16, 3]);
    expect(b.texts.shape[0]).toBe(b.captions.length);
    const rows = b.texts.arraySync() as number[][];
    rows.forEach((r, i) => expect(tok.decode(r)).toBe(b.captions[i]!.slice(0, 63)));
    out.first ??= b.images.dataSync() as Float32Array;
    out.captions.push(...b.captions);
    out.paths.push(...b.paths);
    tf.dispose([b.images, b.texts]);
  }
  return out;
}

async function manyChunks(n: number, opts: { corrupt?: boolean } = {}): Promise<string> {
  const root = await tempDir('lightclip-dl-dm-');
  dirs.push(root);
  const dir = path.join(root, 'ds');
  const w = await DeepLakeWriter.create(dir, [
    { name: 'URL', htype: 'image', sampleCompression: 'jpeg', maxChunkSize: 1500 },
    { name: 'TEXT', htype: 'text', maxChunkSize: 200 },
    { name: 'NSFW', htype: 'text' },
  ]);
  for (let i = 0; i < n; i++) {
    const sharp = (await import('sharp')).default;
    const jpg = await sharp(Buffer.from(noise(12, 10, i + 1)), { raw: { width: 12, height: 10, channels: 3 } }).jpeg({ quality: 50 }).toBuffer();
    await w.append({ URL: new Uint8Array(jpg), TEXT: `caption ${i}`, NSFW: i % 4 === 3 ? 'NSFW' : 'UNLIKELY' });
  }
  await w.close();
  return dir;
}

describe('DeepLakeDataModule on the real fixtures', () => {
  it('--filter_NSFW keeps what deeplake\'s query keeps; the empty image is skipped and counted', async () => {
    const logs: string[] = [];
    const m = dm({ filterNsfw: true }, logs);
    await m.setup('fit');
    expect([...m.selection!]).toEqual([0, 1, 3, 6, 9, 11]); // expected.json query_unlikely_width_50_450
    const got = await drain(m.trainDataloader());
    expect(got.paths.map((p) => Number(/\[(\d+)\]$/.exec(p)![1]))).toEqual([0, 1, 3, 6, 11]);
    expect(got.captions[0]).toBe('A red square next to a blue circle');
    expect(m.skipped).toEqual({ corrupt: 0, empty_image: 1, empty_caption: 0 });
    expect(logs.some((l) => /epoch 0: skipped 1 empty image samples/.test(l))).toBe(true);
    await m.teardown('fit');
  });

  it('old layout: falls back to image/caption; the empty caption is skipped and counted', async () => {
    const m = dm({ path: path.join(FIXTURES, 'old_layout'), numWorkers: 1 });
    await m.setup('fit');
    const got = await drain(m.trainDataloader());
    expect(got.captions).toHaveLength(7);
    expect(got.captions).not.toContain('');
    expect(m.skipped.empty_caption).toBe(1);
    await m.teardown('fit');
  });

  it('validation images are CLIP\'s eval transform of the stored JPEG bytes', async () => {
    const m = dm({ valPath: path.join(FIXTURES, 'laion_like') });
    await m.setup('fit');
    const got = await drain(m.valDataloader()!);
    const ds = await DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, 'laion_like')));
    const want = await clipEvalTransform(16).apply((await ds.tensor('URL').raw(0)).bytes);
    expect(got.first!.subarray(0, want.length)).toEqual(want);
    await m.teardown('fit');
  });

  it('bad keys, queries and paths are clear errors naming the dataset and tensor', async () => {
    await expect(dm({ imageKey: 'IMG' }).setup('fit')).rejects.toThrow(/laion_like: `--image_key` "IMG" is not a tensor of the dataset \(tensors: .*URL/);
    await expect(dm({ textKey: 'WIDTH' }).setup('fit')).rejects.toThrow(/tensor "WIDTH" has htype generic, expected text for `--text_key`/);
    await expect(dm({ query: "SELECT * WHERE NSFW == 'UNLIKELY' OR WIDTH > 3" }).setup('fit')).rejects.toThrow(/expected AND or the end .*supported: SELECT \* WHERE/);
    await expect(dm({ query: "SELECT * WHERE COLOR == 'red'" }).setup('fit')).rejects.toThrow(/--query names tensor "COLOR", which does not exist/);
    await expect(dm({ path: path.join(FIXTURES, 'pixels') }).setup('fit')).rejects.toThrow(/is not a Deep Lake v3 dataset/);
    expect(() => dm({ cacheMb: -1 })).toThrow(/`--deeplake_cache_mb` must be a positive number/);
  });
});

describe('DeepLakeDataModule streaming over many chunks', () => {
  it('DDP ranks read disjoint chunks, equal batch counts, covering every sample; epochs reshuffle reproducibly', async () => {
    const dir = await manyChunks(60);
    const ranks = [0, 1, 2].map((rank) => dm({ path: dir, rank, worldSize: 3, shuffle: true, seed: 7, shuffleBuffer: 8 }));
    for (const m of ranks) await m.setup('fit');
    const ds = ranks[0]!.dataset!;
    expect(ds.tensor('URL').numChunks).toBeGreaterThan(10);
    const loaders = ranks.map((m) => m.trainDataloader());
    const idx = loaders.map((l) => l.epochIndices(0));
    expect(new Set(idx.map((x) => x.length)).size).toBe(1);
    expect(new Set(loaders.map((l) => l.length)).size).toBe(1);
    const all = idx.flat();
    expect(new Set(all).size).toBe(60);
    // chunk-disjoint: no chunk row is read by two ranks (apart from wrap-around padding of a rank's own samples)
    const chunkOf = (i: number) => (ds.tensor('URL').index.lasts as Float64Array).findIndex((l) => l >= i);
    const chunkSets = idx.map((x) => new Set(x.map(chunkOf)));
    for (let a = 0; a < 3; a++) for (let b = a + 1; b < 3; b++) expect([...chunkSets[a]!].filter((c) => chunkSets[b]!.has(c))).toEqual([]);
    // shuffled, reproducible, different per epoch
    expect(idx[0]).not.toEqual([...idx[0]!].sort((x, y) => x - y));
    expect(loaders[0]!.epochIndices(0)).toEqual(idx[0]);
    expect(loaders[0]!.epochIndices(1)).not.toEqual(idx[0]);
    // the decoded stream follows the plan
    const got = await drain(loaders[1]!);
    expect(got.paths.map((p) => Number(/\[(\d+)\]$/.exec(p)![1]))).toEqual(idx[1]);
    for (const m of ranks) await m.teardown('fit');
  });

  it('fewer chunks than ranks: the chunk is split so every rank gets a disjoint, equal share', async () => {
    const ranks = [0, 1, 2].map((rank) => dm({ rank, worldSize: 3, shuffle: true }));
    for (const m of ranks) await m.setup('fit');
    expect(ranks[0]!.dataset!.tensor('URL').numChunks).toBe(1);
    const idx = ranks.map((m) => m.trainDataloader().epochIndices(0));
    expect(idx.map((x) => x.length)).toEqual([5, 5, 5]); // 13 samples: ceil(13 / 3), two ranks pad by wrapping
    expect(new Set(idx.flat()).size).toBe(13);
    for (const m of ranks) await m.teardown('fit');
  });

  it('a resumed datamodule replays the saved epoch exactly (order, captions and pixels)', async () => {
    const dir = await manyChunks(24);
    const a = dm({ path: dir, shuffle: true, seed: 3, batchSize: 4, dropLast: true });
    await a.setup('fit');
    const la = a.trainDataloader();
    la.setEpoch(2);
    const want = await drain(la);
    const state = JSON.parse(JSON.stringify(a.stateDict()));
    expect(state.epoch).toBe(2);
    expect(JSON.stringify(state)).not.toMatch(/token/i);
    const b = dm({ path: dir, shuffle: true, seed: 3, batchSize: 4, dropLast: true, numWorkers: 2 });
    b.loadStateDict(state);
    await b.setup('fit');
    const got = await drain(b.trainDataloader());
    expect(got.paths).toEqual(want.paths);
    expect(got.first).toEqual(want.first);
    await a.teardown('fit');
    await b.teardown('fit');
  });

  it('a missing chunk, a truncated chunk and an undecodable JPEG are skipped and counted, never a crash', async () => {
    const dir = await manyChunks(30);
    const chunks = readdirSync(path.join(dir, 'URL', 'chunks')).sort();
    const ds = await DeepLakeDataset.open(new LocalStorage(dir));
    const names = ds.tensor('URL').index.names;
    const sizes = names.map((_, r) => ds.tensor('URL').chunkRange(r)).map(([s, e]) => e - s);
    // r0: deleted, r1: truncated mid-data, r2: garbage JPEG bytes (same length)
    const file = (r: number) => path.join(dir, 'URL', 'chunks', names[r]!);
    expect(chunks).toContain(names[0]);
    (await import('node:fs')).rmSync(file(0));
    truncateSync(file(1), 60);
    const raw2 = await ds.tensor('URL').raw(ds.tensor('URL').chunkRange(2)[0]);
    const buf = (await import('node:fs')).readFileSync(file(2));
    const at = buf.indexOf(Buffer.from(raw2.bytes.subarray(0, 64)));
    buf.fill(7, at + 2, at + raw2.bytes.length);
    writeFileSync(file(2), buf);
    const logs: string[] = [];
    const m = dm({ path: dir }, logs);
    await m.setup('fit');
    const got = await drain(m.trainDataloader());
    const bad = sizes[0]! + sizes[1]! + 1;
    expect(got.captions.length).toBe(30 - bad);
    expect(m.skipped.corrupt).toBe(bad);
    expect(logs.join('\n')).toMatch(/skipping .*\[0\] \(corrupt\): .*no such object/);
    expect(logs.join('\n')).toMatch(/truncated/);
    expect(logs.join('\n')).toMatch(new RegExp(`epoch 0: skipped ${bad} corrupt samples`));
    await m.teardown('fit');
  });
});

describe('DeepLakeDataModule image kinds', () => {
  it('link[image] (local files; an empty link is skipped) and raw lz4-chunked pixels decode like the same PNGs', async () => {
    const root = await tempDir('lightclip-dl-kinds-');
    dirs.push(root);
    const sharp = (await import('sharp')).default;
    const pngs: string[] = [];
    const raws: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      const px = noise(20, 14, 10 + i);
      raws.push(px);
      const f = path.join(root, `${i}.png`);
      writeFileSync(f, await sharp(Buffer.from(px), { raw: { width: 20, height: 14, channels: 3 } }).png().toBuffer());
      pngs.push(f);
    }
    const links = path.join(root, 'links');
    const wl = await DeepLakeWriter.create(links, [{ name: 'URL', htype: 'image', isLink: true, sampleCompression: 'png' }, { name: 'TEXT', htype: 'text' }]);
    for (let i = 0; i < 4; i++) await wl.append({ URL: pngs[i], TEXT: `linked ${i}` });
    await wl.append({ URL: '', TEXT: 'no image' });
    await wl.close();
    const rawDir = path.join(root, 'raw');
    const wr = await DeepLakeWriter.create(rawDir, [{ name: 'image', htype: 'image', sampleCompression: null, chunkCompression: 'lz4', maxChunkSize: 1000 }, { name: 'caption', htype: 'text' }]);
    for (let i = 0; i < 4; i++) await wr.append({ image: { shape: [14, 20, 3], data: raws[i]! }, caption: `raw ${i}` });
    await wr.close();
    const evalOf = async (p: string) => {
      const m = dm({ path: p, valPath: p });
      await m.setup('fit');
      const rows: Float32Array[] = [];
      const caps: string[] = [];
      for await (const b of m.valDataloader()!) {
        const d = b.images.dataSync() as Float32Array;
        for (let k = 0; k < b.captions.length; k++) rows.push(d.slice(k * 16 * 16 * 3, (k + 1) * 16 * 16 * 3));
        caps.push(...b.captions);
        tf.dispose([b.images, b.texts]);
      }
      await m.teardown('fit');
      return { rows, caps, skipped: m.skipped };
    };
    const l = await evalOf(links);
    const r = await evalOf(rawDir);
    expect(l.caps).toEqual(['linked 0', 'linked 1', 'linked 2', 'linked 3']);
    expect(r.caps).toEqual(['raw 0', 'raw 1', 'raw 2', 'raw 3']);
    expect(l.skipped.empty_image).toBe(1);
    for (let i = 0; i < 4; i++) {
      const want = await clipEvalTransform(16).apply(pngs[i]!);
      expect(l.rows[i]).toEqual(want);
      expect(r.rows[i]).toEqual(want);
    }
  });
});

