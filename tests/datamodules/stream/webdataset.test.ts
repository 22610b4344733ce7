import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { tf } from '../../../core/tf.js';
import type { StreamBatch } from '../../../datamodules/stream/batcher.js';
import { tarArchive } from '../../../datamodules/stream/tarWriter.js';
import { WebDatasetDataModule, type WebDatasetOptions } from '../../../datamodules/webdataset.js';
import { fakeTokenizer, norm, removeDir, tempDir } from '../helpers.js';
import { sampleImage, writeShards } from './fixtures.js';

const tokenizer = fakeTokenizer(24);
let root: string;

beforeAll(async () => {
  root = await tempDir('lightclip-wds-');
});
afterAll(() => removeDir(root));

function dm(trainData: string, extra: Partial<WebDatasetOptions> = {}): WebDatasetDataModule {
  const m = new WebDatasetDataModule({ trainData, batchSize: 2, imageSize: 8, seed: 3, tokenizer, log: null, ...extra });
  m.setup('fit');
  return m;
}

/** Caption ids of every row, batch by batch; checks each image is its caption's colour. */
async function epochIds(loader: AsyncIterable<StreamBatch>): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of loader) {
    const ids = b.captions.map((c) => Number(/caption (\d+)/.exec(c)![1]));
    const px = b.images.dataSync();
    const n = b.images.shape[0];
    const side = b.images.shape[1] * b.images.shape[2] * 3;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      const want = [(id * 37) % 256, (id * 91) % 256, (id * 13) % 256];
      for (let c = 0; c < 3; c++) expect(px[i * side + c]!).toBeCloseTo(norm(want[c]!, c), 4);
    }
    tf.dispose([b.images, b.texts]);
    out.push(ids);
  }
  return out;
}

describe('WebDatasetDataModule', () => {
  let shards: string[];
  let spec: string;
  beforeAll(async () => {
    const dir = path.join(root, 'a');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    shards = await writeShards(dir, 4, 5);
    spec = path.join(dir, 'shard-{000..003}.tar');
  });

  it('reads every sample once per epoch (sizes.json length), images paired with captions', async () => {
    const m = dm(spec);
    const loader = m.trainDataloader();
    expect(loader.length).toBe(10);
    const ids = (await epochIds(loader)).flat();
    expect(ids.length).toBe(20);
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // Shuffled (shards and samples), not the file order.
    expect(ids).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('is a function of (seed, epoch): replaying an epoch gives the same batches, another epoch another order', async () => {
    const a = dm(spec);
    const la = a.trainDataloader();
    la.setEpoch(1);
    const e1 = await epochIds(la);
    la.setEpoch(2);
    const e2 = await epochIds(la);
    expect(e2).not.toEqual(e1);
    // A fresh datamodule restored from a checkpoint's state replays epoch 1 exactly.
    const b = dm(spec);
    b.loadStateDict(a.stateDict());
    const lb = b.trainDataloader();
    expect(await epochIds(lb)).toEqual(e2);
    lb.setEpoch(1);
    expect(await epochIds(lb)).toEqual(e1);
  });

  it('--train_num_samples beyond the data restarts workers (with_epoch); partial batches dropped', async () => {
    const m = dm(spec, { trainNumSamples: 27, batchSize: 4 });
    const loader = m.trainDataloader();
    expect(loader.length).toBe(7); // ceil(27 / 4)
    const batches = await epochIds(loader);
    expect(batches.map((b) => b.length)).toEqual([4, 4, 4, 4, 4, 4, 4]);
    const counts = new Map<number, number>();
    for (const id of batches.flat()) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.keys()].length).toBe(20); // the first pass covered everything
  });

  it('validation: file order, split by worker, keeps the last partial batch', async () => {
    const m = new WebDatasetDataModule({ valData: spec, batchSize: 3, imageSize: 8, tokenizer, log: null });
    m.setup('validate');
    const ids = await epochIds(m.valDataloader()!);
    expect(ids.flat()).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(ids.at(-1)!.length).toBe(2);
  });

  it('refuses fewer shards than workers × world unless resampled', async () => {
    const m = dm(spec, { numWorkers: 3, worldSize: 2, rank: 1 });
    expect(() => m.trainDataloader().check()).toThrow(MisconfigurationError);
    expect(() => m.trainDataloader().check()).toThrow(/4 shards, fewer than --num_workers 3 × world size 2 = 6/);
    const r = dm(spec, { numWorkers: 3, worldSize: 2, rank: 1, datasetResampled: true });
    expect(() => r.trainDataloader().check()).not.toThrow();
  });

  it('requires an epoch length when nothing gives one', async () => {
    const dir = path.join(root, 'nosizes');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeShards(dir, 1, 2, { sizes: false });
    expect(() => dm(path.join(dir, 'shard-000.tar'))).toThrow(/--train_num_samples` is required/);
  });
});

describe('splitting and resampling', () => {
  it('split_by_node × split_by_worker covers each sample exactly once per epoch', async () => {
    const dir = path.join(root, 'split');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeShards(dir, 12, 3);
    const spec = path.join(dir, 'shard-{000..011}.tar');
    for (const epoch of [0, 1]) {
      const all: number[] = [];
      const perRank: number[][] = [];
      for (let rank = 0; rank < 2; rank++) {
        const m = dm(spec, { numWorkers: 2, batchSize: 3, worldSize: 2, rank });
        const loader = m.trainDataloader();
        loader.setEpoch(epoch);
        expect(loader.length).toBe(6); // ceil(ceil(36 / (3·2)) / 2) = 3 per worker
        const ids = (await epochIds(loader)).flat();
        perRank.push(ids);
        all.push(...ids);
        await m.teardown('fit');
      }
      expect(perRank[0]!.length).toBe(18);
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 36 }, (_, i) => i));
    }
  });

  it('--dataset_resampled with --train_data_upsampling_factors draws sources by weight', async () => {
    const dir = path.join(root, 'resample');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'a'), { recursive: true }));
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'b'), { recursive: true }));
    // Source a: ids 0..1, source b: ids 2..3 (one sample per shard).
    for (const [sub, ids] of [['a', [0, 1]], ['b', [2, 3]]] as const) {
      for (const [k, id] of ids.entries()) {
        await writeFile(path.join(dir, sub, `${k}.tar`), tarArchive([[`x${id}.png`, await sampleImage(id)], [`x${id}.txt`, `caption ${id}`]]));
      }
    }
    const spec = `${dir}/a/{0..1}.tar::${dir}/b/{0..1}.tar`;
    const m = dm(spec, { datasetResampled: true, trainDataUpsamplingFactors: '1::3', trainNumSamples: 240, batchSize: 8 });
    const ids = (await epochIds(m.trainDataloader())).flat();
    expect(ids.length).toBe(240);
    const fromA = ids.filter((i) => i < 2).length;
    // P(a) = 2·1 / (2·1 + 2·3) = 0.25: 60 expected, sd 6.7.
    expect(fromA).toBeGreaterThan(40);
    expect(fromA).toBeLessThan(80);
    expect(() => dm(spec, { trainDataUpsamplingFactors: '1::3', trainNumSamples: 8 })).toThrow(/needs `--dataset_resampled`/);
    expect(() => dm(spec, { datasetResampled: true, trainDataUpsamplingFactors: '1', trainNumSamples: 8 })).toThrow(/one non-negative number per `::` source/);
  });
});

describe('bad input', () => {
  it('skips and counts a truncated shard, a non-image member and a non-UTF-8 caption; the epoch completes', async () => {
    const dir = path.join(root, 'bad');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const good = tarArchive([
      ['g0.png', await sampleImage(0)], ['g0.txt', 'caption 0'],
      ['g1.png', Buffer.from('this is not an image')], ['g1.txt', 'caption 1'],
      ['g2.png', await sampleImage(2)], ['g2.txt', Buffer.from([0x63, 0xff, 0xfe])],
      ['g3.png', await sampleImage(3)], ['g3.txt', 'caption 3'],
      ['g4.png', await sampleImage(4)],
    ]);
    await writeFile(path.join(dir, '0.tar'), good);
    const second = tarArchive([['h5.png', await sampleImage(5)], ['h5.txt', 'caption 5'], ['h6.png', await sampleImage(6)], ['h6.txt', 'caption 6']]);
    await writeFile(path.join(dir, '1.tar'), second.subarray(0, second.length - 1024 - 512 - 256));
    const lines: string[] = [];
    const m = new WebDatasetDataModule({ valData: `${dir}/{0..1}.tar`, batchSize: 2, imageSize: 8, tokenizer, log: (l) => lines.push(l) });
    m.setup('validate');
    const ids = (await epochIds(m.valDataloader()!)).flat();
    expect(ids).toEqual([0, 3, 5]);
    expect(m.skips.total).toEqual({ corrupt: 2, incomplete: 1, shard: 1 });
    expect(lines.some((l) => /1\.tar: truncated/.test(l))).toBe(true);
    expect(lines.some((l) => /0\.tar#g2: \.txt is not UTF-8/.test(l))).toBe(true);
    expect(lines.some((l) => /skipped 2 corrupt samples/.test(l))).toBe(true);
  });

  it('one clear error, naming the shard, when nothing can be read', async () => {
    const dir = path.join(root, 'nothing');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeFile(path.join(dir, 'x.tar'), Buffer.from('garbage'.repeat(100)));
    const m = new WebDatasetDataModule({ valData: `${dir}/x.tar::${dir}/missing.tar`, batchSize: 2, imageSize: 8, tokenizer, log: null });
    m.setup('validate');
    await expect(epochIds(m.valDataloader()!)).rejects.toThrow(/--val_data: worker 0 of rank 0 read no usable sample .* first failure: .*x\.tar: bad header checksum/);
  });
});
