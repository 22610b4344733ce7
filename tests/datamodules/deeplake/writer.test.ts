import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { toNumbers, type NumericArray } from '../../../datamodules/deeplake/decode.js';
import { DeepLakeWriter } from '../../../datamodules/deeplake/writer.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';
import { removeDir, tempDir } from '../helpers.js';

const FIXTURES = path.resolve(__dirname, '../../fixtures/deeplake');
const dirs: string[] = [];
const fresh = async (): Promise<string> => {
  const d = await tempDir('lightclip-dl-');
  dirs.push(d);
  return path.join(d, 'ds');
};
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});
const open = (dir: string, o = {}) => DeepLakeDataset.open(new LocalStorage(dir), o);
const arr = async (ds: DeepLakeDataset, t: string, i: number) => (await ds.tensor(t, { hidden: true }).value(i)) as { shape: number[]; data: NumericArray };

function listFiles(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(path.join(root, r)).isDirectory()) out.push(...listFiles(root, r));
    else out.push(r);
  }
  return out;
}

describe('DeepLakeWriter', () => {
  it('writes the file layout and metas deeplake 3.9.15 wrote for the same tensors (laion_like)', async () => {
    const dir = await fresh();
    const w = await DeepLakeWriter.create(dir, [
      { name: 'URL', htype: 'image', sampleCompression: 'jpeg' },
      { name: 'TEXT', htype: 'text' },
      { name: 'NSFW', htype: 'text' },
      { name: 'WIDTH', htype: 'generic', dtype: 'int64' },
      { name: 'HEIGHT', htype: 'generic', dtype: 'int64' },
    ]);
    const real = await open(path.join(FIXTURES, 'laion_like'));
    for (let i = 0; i < real.length; i++) {
      const img = await real.tensor('URL').raw(i);
      await w.append({
        URL: img.bytes.length ? img.bytes : null,
        TEXT: await real.tensor('TEXT').value(i),
        NSFW: await real.tensor('NSFW').value(i),
        WIDTH: toNumbers((await arr(real, 'WIDTH', i)).data)[0],
        HEIGHT: toNumbers((await arr(real, 'HEIGHT', i)).data)[0],
      });
    }
    await w.commit('laion_like: 13 samples');
    await w.close();
    // chunk names and the head commit id are random: compare with those normalised
    const realRoot = path.join(FIXTURES, 'laion_like');
    const norm = (root: string, ds: DeepLakeDataset) =>
      listFiles(root).map((f) => f.replace(ds.commitId, '<head>').replace(/\/chunks\/[0-9a-f]+$/, '/chunks/<id>')).sort();
    const mine = await open(dir);
    expect(norm(dir, mine)).toEqual(norm(realRoot, real));
    for (const f of ['dataset_meta.json', 'URL/tensor_meta.json', 'TEXT/tensor_meta.json', 'WIDTH/tensor_meta.json', '_URL_shape/tensor_meta.json', '_URL_id/tensor_meta.json', '_URL_info/tensor_meta.json', 'URL/tensor_info.json']) {
      expect(JSON.parse(readFileSync(path.join(dir, f), 'utf8')), f).toEqual(JSON.parse(readFileSync(path.join(realRoot, f), 'utf8')));
    }
    for (const f of ['URL/commit_diff', 'TEXT/commit_diff', '_URL_shape/commit_diff']) expect(readFileSync(path.join(dir, f)), f).toEqual(readFileSync(path.join(realRoot, f)));
    // and the samples read back identically, including the stored JPEG bytes
    for (let i = 0; i < real.length; i++) {
      expect(await mine.tensor('TEXT').value(i)).toBe(await real.tensor('TEXT').value(i));
      expect(Buffer.from((await mine.tensor('URL').raw(i)).bytes)).toEqual(Buffer.from((await real.tensor('URL').raw(i)).bytes));
      expect((await mine.tensor('URL').raw(i)).shape).toEqual((await real.tensor('URL').raw(i)).shape);
      expect(toNumbers((await arr(mine, '_URL_shape', i)).data)).toEqual((await real.tensor('URL').raw(i)).shape);
    }
  });

  it('round-trips every dtype, text, json, list, class_label, png, lz4 and empty samples', async () => {
    const dir = await fresh();
    const dtypes = ['bool', 'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64'];
    const w = await DeepLakeWriter.create(dir, [
      ...dtypes.map((d) => ({ name: `n_${d}`, htype: 'generic' as const, dtype: d })),
      { name: 'lz4s', htype: 'generic', dtype: 'int16', sampleCompression: 'lz4' },
      { name: 'lz4c', htype: 'generic', dtype: 'float32', chunkCompression: 'lz4' },
      { name: 'j', htype: 'json' },
      { name: 'l', htype: 'list' },
      { name: 'label', htype: 'class_label', classNames: ['cat', 'dog', 'bird'] },
      { name: 'png', htype: 'image', sampleCompression: 'png' },
      { name: 't', htype: 'text' },
    ]);
    const values = (i: number): Record<string, number[]> => ({
      bool: [1, 0, i % 2], uint8: [255, i], int8: [-128, 127, -i || 0], uint16: [65535, i], int16: [-32768, i], uint32: [4294967295, i],
      int32: [-2147483648, i], uint64: [2 ** 53, i], int64: [-(2 ** 53), i], float32: [1.5, -i / 4], float64: [Math.PI, 1e-300 * i],
    });
    const pngs: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const px = Buffer.alloc(4 * 3 * 3, 0).map((_, k) => (k * 37 + i * 11) & 255);
      pngs.push(await sharp(px, { raw: { width: 3, height: 4, channels: 3 } }).png().toBuffer());
      const v = values(i);
      await w.append({
        ...Object.fromEntries(dtypes.map((d) => [`n_${d}`, v[d]])),
        lz4s: { shape: [2, 50], data: Array.from({ length: 100 }, (_, k) => (k % 7) - i) },
        lz4c: { shape: [3], data: [i, i + 0.5, -i] },
        j: i === 2 ? null : { a: i, s: `é${i}`, nested: [1, { b: null }] },
        l: ['x', i, { y: true }],
        label: i === 3 ? [] : i === 4 ? ['bird', 'cat'] : 'dog',
        png: i === 1 ? null : new Uint8Array(pngs[i]!),
        t: i === 0 ? '' : `caption ${i} \u{1F680}`,
      });
    }
    await w.close();
    const ds = await open(dir);
    expect(ds.length).toBe(5);
    for (let i = 0; i < 5; i++) {
      const v = values(i);
      for (const d of dtypes) {
        const got = await arr(ds, `n_${d}`, i);
        const want = d === 'float32' ? v[d]!.map((x) => Math.fround(x)) : v[d]!;
        expect(toNumbers(got.data), `${d}[${i}]`).toEqual(want);
        expect(got.shape).toEqual([want.length]);
      }
      expect(toNumbers((await arr(ds, 'lz4s', i)).data)).toEqual(Array.from({ length: 100 }, (_, k) => (k % 7) - i));
      expect((await arr(ds, 'lz4s', i)).shape).toEqual([2, 50]);
      expect(toNumbers((await arr(ds, 'lz4c', i)).data)).toEqual([i, i + 0.5, -i]);
      expect(await ds.tensor('j').value(i)).toEqual(i === 2 ? null : { a: i, s: `é${i}`, nested: [1, { b: null }] });
      expect(await ds.tensor('l').value(i)).toEqual(['x', i, { y: true }]);
      expect(toNumbers((await arr(ds, 'label', i)).data)).toEqual(i === 3 ? [] : i === 4 ? [2, 0] : [1]);
      const png = await ds.tensor('png').raw(i);
      if (i === 1) expect(png.bytes.length).toBe(0);
      else expect([png.imageCompression, png.shape, Buffer.from(png.bytes).equals(pngs[i]!)]).toEqual(['png', [4, 3, 3], true]);
      expect(await ds.tensor('t').value(i)).toBe(i === 0 ? '' : `caption ${i} \u{1F680}`);
    }
    expect(ds.tensor('label').classNames).toEqual(['cat', 'dog', 'bird']);
  });

  it('splits into many chunks and tiles big samples; both read back exactly', async () => {
    const dir = await fresh();
    const w = await DeepLakeWriter.create(dir, [
      { name: 'img', htype: 'image', sampleCompression: null, chunkCompression: 'lz4', maxChunkSize: 4000, tilingThreshold: 1500 },
      { name: 'caption', htype: 'text', maxChunkSize: 40 },
    ]);
    const images: Uint8Array[] = [];
    const shapes = [[10, 10, 3], [40, 30, 3], [7, 5, 3], [33, 41, 3], [10, 10, 3]];
    for (let i = 0; i < 40; i++) {
      const shape = shapes[i % shapes.length]!;
      const n = shape[0]! * shape[1]! * shape[2]!;
      const data = Uint8Array.from({ length: n }, (_, k) => (k * 7 + i * 13 + (k >> 5)) & 255);
      images.push(data);
      await w.append({ img: { shape, data }, caption: `sample number ${i}` });
    }
    await w.close();
    const ds = await open(dir);
    const img = ds.tensor('img');
    expect(img.tiles?.entries.size).toBeGreaterThan(10);
    expect(img.numChunks).toBeGreaterThan(40);
    expect(ds.tensor('caption').numChunks).toBeGreaterThan(10);
    for (let i = 0; i < 40; i++) {
      const raw = await img.raw(i);
      expect(raw.shape).toEqual(shapes[i % shapes.length]);
      expect(createHash('sha256').update(raw.bytes).digest('hex'), `img[${i}]`).toBe(createHash('sha256').update(images[i]!).digest('hex'));
      expect(await ds.tensor('caption').value(i)).toBe(`sample number ${i}`);
    }
  });

  it('version control: commits, an edited sample copied into versions/<commit>/, appends, and a branch', async () => {
    const dir = await fresh();
    const w = await DeepLakeWriter.create(dir, [{ name: 'TEXT', htype: 'text', maxChunkSize: 40 }, { name: 'NSFW', htype: 'text' }]);
    for (let i = 0; i < 12; i++) await w.append({ TEXT: `v1 caption ${i}`, NSFW: 'UNLIKELY' });
    const c1 = await w.commit('first');
    await w.update('TEXT', 5, 'edited in c2');
    await w.append({ TEXT: 'appended in c2', NSFW: 'NSFW' });
    const c2 = await w.commit('second');
    await w.update('TEXT', 0, 'edited on main head');
    await w.checkoutNewBranch('dev');
    await w.update('TEXT', 5, 'edited on dev');
    await w.close();

    const main = await open(dir);
    expect(main.branch).toBe('main');
    expect(main.length).toBe(13);
    expect(await main.tensor('TEXT').value(0)).toBe('edited on main head');
    expect(await main.tensor('TEXT').value(5)).toBe('edited in c2');
    expect(await main.tensor('TEXT').value(12)).toBe('appended in c2');
    expect(await main.tensor('TEXT').value(6)).toBe('v1 caption 6');

    const first = await open(dir, { commit: c1 });
    expect(first.length).toBe(12);
    expect(await first.tensor('TEXT').value(5)).toBe('v1 caption 5');
    expect(await first.tensor('TEXT').value(0)).toBe('v1 caption 0');

    const second = await open(dir, { commit: c2 });
    expect(second.length).toBe(13);
    expect(await second.tensor('TEXT').value(5)).toBe('edited in c2');
    expect(await second.tensor('TEXT').value(0)).toBe('v1 caption 0');

    const dev = await open(dir, { branch: 'dev' });
    expect(dev.commitChain.slice(1)).toEqual([c2, c1]);
    expect(await dev.tensor('TEXT').value(5)).toBe('edited on dev');
    expect(await dev.tensor('TEXT').value(0)).toBe('v1 caption 0');
    // the edit lives in the commit's own folder under the original chunk name
    const key = await second.chunkKey('TEXT', second.tensor('TEXT').index.names[(second.tensor('TEXT').index.lasts as Float64Array).findIndex((l) => l >= 5)]!);
    expect(key).toMatch(new RegExp(`^versions/${c2}/TEXT/chunks/[0-9a-f]+$`));
  });

  it('link[image] tensors: the URLs are stored and the targets fetched', async () => {
    const dir = await fresh();
    const target = path.join(path.dirname(dir), 'pic.png');
    const png = await sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 200, g: 10, b: 30 } } }).png().toBuffer();
    (await import('node:fs')).writeFileSync(target, png);
    const w = await DeepLakeWriter.create(dir, [{ name: 'URL', htype: 'image', isLink: true, sampleCompression: 'png' }, { name: 'TEXT', htype: 'text' }]);
    await w.append({ URL: target, TEXT: 'linked' });
    await w.append({ URL: '', TEXT: 'no image' });
    await w.close();
    const ds = await open(dir);
    expect(ds.tensor('URL').htype).toBe('link[image]');
    expect(ds.hiddenNames.sort()).toEqual(['_TEXT_id', '_URL_id']);
    expect(await ds.tensor('URL').value(0)).toBe(target);
    expect(await ds.tensor('URL').value(1)).toBe('');
    expect(Buffer.from(await ds.fetchLink(target)).equals(png)).toBe(true);
  });
});
