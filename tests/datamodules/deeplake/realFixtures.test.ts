import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { toNumbers, type NumericArray } from '../../../datamodules/deeplake/decode.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';

/** Datasets written by the real deeplake 3.9.15 (tests/fixtures/deeplake/README.md), with what deeplake read back. */
const FIXTURES = path.resolve(__dirname, '../../fixtures/deeplake');
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as {
  datasets: Record<string, {
    length: number;
    tensors: Record<string, { htype: string; dtype: string; sample_compression: string | null; length: number; min_shape: number[]; max_shape: number[]; is_link: boolean }>;
    hidden_tensors: string[];
    num_chunks: Record<string, number>;
    commit_id: string | null;
    pending_commit_id: string;
    pixels_file: string;
    samples: Array<Record<string, unknown>>;
  }>;
};

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

for (const [name, exp] of Object.entries(expected.datasets)) {
  describe(`real deeplake 3.9.15 dataset ${name}`, () => {
    const open = () => DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, name)));

    it('has the length, tensors, metas and hidden tensors deeplake reports', async () => {
      const ds = await open();
      expect(ds.length).toBe(exp.length);
      expect([...ds.tensors.keys()].sort()).toEqual(Object.keys(exp.tensors).sort());
      expect(ds.hiddenNames.sort()).toEqual([...exp.hidden_tensors].sort());
      expect(ds.commitId).toBe(exp.pending_commit_id);
      for (const [t, m] of Object.entries(exp.tensors)) {
        const tensor = ds.tensor(t);
        expect(tensor.meta.htype).toBe(m.htype);
        expect(tensor.meta.sample_compression).toBe(m.sample_compression);
        expect(tensor.length).toBe(m.length);
        expect(tensor.meta.min_shape).toEqual(m.min_shape);
        expect(tensor.meta.max_shape).toEqual(m.max_shape);
        expect(tensor.numChunks).toBe(exp.num_chunks[t]);
        if (m.htype !== 'text') expect(tensor.dtype).toBe(m.dtype);
      }
    });

    it('reads every text and number sample exactly', async () => {
      const ds = await open();
      for (const s of exp.samples) {
        for (const [t, v] of Object.entries(s)) {
          if (t === 'index' || !ds.hasTensor(t)) continue;
          const tensor = ds.tensor(t);
          if (tensor.meta.htype === 'text') expect(await tensor.value(s.index as number)).toBe(v);
          else if (tensor.meta.htype === 'generic') {
            const got = (await tensor.value(s.index as number)) as { shape: number[]; data: NumericArray };
            expect(got.shape).toEqual([1]);
            expect(toNumbers(got.data)).toEqual([v]);
          }
        }
      }
    });

    it('returns the stored JPEG bytes byte for byte, with shapes, and they decode to deeplake\'s pixels', async () => {
      const ds = await open();
      const imageKey = ds.hasTensor('URL') ? 'URL' : 'image';
      const pixels = readFileSync(path.join(FIXTURES, exp.pixels_file));
      let compared = 0;
      for (const s of exp.samples) {
        const e = s[imageKey] as { shape: number[]; sha256: string; stored_sha256?: string; stored_nbytes: number; pixels_offset: number; pixels_nbytes: number };
        const raw = await ds.tensor(imageKey).raw(s.index as number);
        expect(raw.shape).toEqual(e.shape);
        expect(raw.bytes.length).toBe(e.stored_nbytes);
        if (e.stored_nbytes === 0) {
          expect(raw.imageCompression).toBeNull();
          continue;
        }
        expect(raw.imageCompression).toBe('jpeg');
        expect(sha256(raw.bytes)).toBe(e.stored_sha256);
        const { data, info } = await sharp(raw.bytes).raw().toBuffer({ resolveWithObject: true });
        expect([info.height, info.width, info.channels]).toEqual(e.shape);
        const ref = pixels.subarray(e.pixels_offset, e.pixels_offset + e.pixels_nbytes);
        let maxDiff = 0;
        let sum = 0;
        for (let k = 0; k < ref.length; k++) {
          const d = Math.abs(ref[k]! - data[k]!);
          maxDiff = Math.max(maxDiff, d);
          sum += d;
        }
        // libvips' libjpeg vs Pillow's libjpeg-turbo: a few levels apart at most
        expect(maxDiff).toBeLessThanOrEqual(8);
        expect(sum / ref.length).toBeLessThan(1.5);
        compared++;
      }
      expect(compared).toBeGreaterThan(5);
    });
  });
}

describe('real fixtures: bad requests', () => {
  it('names the dataset and the tensors when a tensor does not exist', async () => {
    const ds = await DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, 'laion_like')));
    expect(() => ds.tensor('caption')).toThrow(/laion_like: no tensor "caption" \(tensors: .*TEXT/);
  });
  it('rejects a folder that is not a Deep Lake dataset', async () => {
    await expect(DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, 'pixels')))).rejects.toThrow(/pixels is not a Deep Lake v3 dataset: no dataset_meta.json/);
  });
  it('rejects unknown branches and commits, listing the real ones', async () => {
    const st = new LocalStorage(path.join(FIXTURES, 'laion_like'));
    await expect(DeepLakeDataset.open(st, { branch: 'dev' })).rejects.toThrow(/no branch "dev" \(branches: main\)/);
    await expect(DeepLakeDataset.open(st, { commit: 'abc' })).rejects.toThrow(/no commit "abc" \(commits: firstdbf/);
  });
  it('reads the root commit by id: the same samples', async () => {
    const ds = await DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, 'laion_like')), { commit: 'firstdbf9474d461a19e9333c2fd19b46115348f' });
    expect(ds.length).toBe(13);
    expect(await ds.tensor('TEXT').value(0)).toBe('A red square next to a blue circle');
  });
});
