import { describe, expect, it } from 'vitest';
import { imageBatchPairs, makeDivisible, variableBatches } from '../../datamodules/variableBatchSampler.js';

const tuples = (xs: Array<{ h: number; w: number; batchSize: number }>) => xs.map((s) => [s.h, s.batchSize]);

describe('variable batch sampler (CoreNet)', () => {
  it('make_divisible', () => {
    expect(makeDivisible(200, 32)).toBe(192);
    expect(makeDivisible(240, 32)).toBe(256);
    expect(makeDivisible(10, 32)).toBe(32);
  });

  it("scale lists of CoreNet's CLIP and CatLIP configs (values from shared/research/corenet.md §9)", () => {
    const clip = imageBatchPairs({ cropW: 224, cropH: 224, batchSize0: 256, minW: 160, maxW: 320, minH: 160, maxH: 320, maxScales: 5, checkScale: 32 });
    expect(tuples(clip)).toEqual([[160, 501], [192, 348], [224, 256], [256, 196], [288, 154], [320, 125]]);
    const catlip = imageBatchPairs({ cropW: 224, cropH: 224, batchSize0: 1024, minW: 128, maxW: 320, minH: 128, maxH: 320, maxScales: 25, checkScale: 16 });
    expect(tuples(catlip)).toEqual([[128, 3136], [144, 2477], [160, 2007], [176, 1658], [192, 1393], [208, 1187], [224, 1024], [240, 892], [256, 784], [272, 694], [288, 619], [304, 555], [320, 501]]);
    const ft = imageBatchPairs({ cropW: 224, cropH: 224, batchSize0: 512, minW: 128, maxW: 320, minH: 128, maxH: 320, maxScales: 25, checkScale: 32 });
    expect(tuples(ft)).toEqual([[128, 1568], [160, 1003], [192, 696], [224, 512], [256, 392], [288, 309], [320, 250]]);
    expect(catlip.every((s) => s.h === s.w)).toBe(true);
  });

  const scales = imageBatchPairs({ cropW: 64, cropH: 64, batchSize0: 8, minW: 32, maxW: 96, minH: 32, maxH: 96, maxScales: 5, checkScale: 16 });

  it('pixels per batch stay within one image of the base budget', () => {
    const budget = 64 * 64 * 8;
    for (const s of scales) {
      expect(s.h * s.w * s.batchSize).toBeLessThanOrEqual(budget);
      expect(s.h * s.w * (s.batchSize + 1)).toBeGreaterThan(budget);
    }
  });

  for (const useShards of [false, true]) {
    it(`shards are disjoint and cover the data; ranks draw the same shapes (useShards ${useShards})`, () => {
      const world = 4;
      const n = 403;
      const per = Array.from({ length: world }, (_, rank) => variableBatches({ numSamples: n, scales, seed: 7, rank, worldSize: world, perNode: 2, useShards }, 3));
      // same number of batches and the same (h, w, B) sequence on every rank
      for (const b of per) expect(b.map((x) => [x.h, x.w, x.indices.length])).toEqual(per[0]!.map((x) => [x.h, x.w, x.indices.length]));
      // distinct per-rank sample lists (before the wrap-around fill) are disjoint and cover 0..n-1
      const lists = per.map((bs) => {
        const seen: number[] = [];
        const all = bs.flatMap((b) => b.indices);
        const len = Math.ceil(n / world);
        for (const i of all.slice(0, len)) seen.push(i);
        return seen;
      });
      const union = new Set(lists.flat());
      expect(union.size).toBe(n);
      const padded = lists.flat().length - n; // the padding repeats at most world−1 samples
      expect(padded).toBeLessThan(world);
    });
  }

  it('reproducible from the seed; the epoch changes order and shapes', () => {
    const a = variableBatches({ numSamples: 100, scales, seed: 1 }, 0);
    expect(variableBatches({ numSamples: 100, scales, seed: 1 }, 0)).toEqual(a);
    expect(variableBatches({ numSamples: 100, scales, seed: 1 }, 1)).not.toEqual(a);
    expect(variableBatches({ numSamples: 100, scales, seed: 2 }, 0)).not.toEqual(a);
    expect(() => variableBatches({ numSamples: 10, scales, rank: 2, worldSize: 2 }, 0)).toThrow(/rank 2/);
  });
});
