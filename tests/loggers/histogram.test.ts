import { describe, expect, it } from 'vitest';
import { computeHistogram, defaultTensorflowEdges } from '../../loggers/tensorboard/histogram.js';

// Expected values come from running torch's make_histogram logic with numpy 2.4
// (np.histogram, then the cumsum/searchsorted trimming) on the same inputs.
describe('computeHistogram', () => {
  it('builds TensorFlow\'s default edges: 774 per sign plus 0', () => {
    const e = defaultTensorflowEdges();
    expect(e.length).toBe(1549);
    expect(e[774]).toBe(0);
    expect(e[775]).toBe(1e-12);
    expect(e[773]).toBe(-1e-12);
    for (let i = 1; i < e.length; i++) expect(e[i]!).toBeGreaterThan(e[i - 1]!);
  });

  it('matches torch/numpy for the exponential buckets', () => {
    const h = computeHistogram([-1, 0, 0.5, 2, 2]);
    expect(h.bucket.length).toBe(591);
    expect(h.bucketLimit.length).toBe(591);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(5);
    const filled = h.bucket.flatMap((c, i) => (c > 0 ? [[i, c]] : []));
    expect(filled).toEqual([[1, 1], [292, 1], [575, 1], [590, 2]]);
    expect(h.bucketLimit[0]).toBe(-1.0089710279437536);
    expect(h.bucketLimit[1]).toBe(-0.917246389039776);
    expect(h.bucketLimit[590]).toBe(2.1628190051144287);
    expect(h).toMatchObject({ min: -1, max: 2, num: 5, sum: 3.5, sumSquares: 9.25 });
  });

  it('matches numpy for uniform buckets, including the left empty bucket', () => {
    expect(computeHistogram([0, 1, 2, 3], 3)).toMatchObject({ bucket: [0, 1, 1, 2], bucketLimit: [0, 1, 2, 3] });
    // All equal: numpy widens the range to [v - 0.5, v + 0.5].
    expect(computeHistogram([5, 5, 5], 4)).toMatchObject({ bucket: [0, 3], bucketLimit: [5, 5.25] });
  });

  it('uses explicit edges, leaving out values outside them', () => {
    const h = computeHistogram([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 5, 7, 20]);
    expect(h.bucket).toEqual([0, 2, 2, 4]);
    expect(h.bucketLimit).toEqual([3, 5, 7, 20]);
  });

  it('skips non-finite values and rejects bad input', () => {
    const h = computeHistogram([1, NaN, Infinity, 2], 2);
    expect(h.num).toBe(2);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(2);
    expect(() => computeHistogram([NaN], 2, 'w')).toThrow(/`w` has no finite values/);
    expect(() => computeHistogram([1], 0)).toThrow(/`bins`/);
    expect(() => computeHistogram([1], [2, 1])).toThrow(/increasing/);
    expect(() => computeHistogram([100], [0, 1])).toThrow(/inside the `bins` edges/);
  });
});
