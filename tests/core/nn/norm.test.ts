import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { BatchNorm1d, BatchNorm2d, LayerNorm } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, values } from './helpers.js';

/** Per-channel mean, biased and unbiased variance of channels-last data with C channels. */
function stats(data: number[], c: number): { mean: number[]; varB: number[]; varU: number[] } {
  const n = data.length / c;
  const mean = Array.from({ length: c }, (_, ch) => data.filter((_, i) => i % c === ch).reduce((a, b) => a + b, 0) / n);
  const ss = Array.from({ length: c }, (_, ch) => data.filter((_, i) => i % c === ch).reduce((a, v) => a + (v - mean[ch]!) ** 2, 0));
  return { mean, varB: ss.map((s) => s / n), varU: ss.map((s) => s / (n - 1)) };
}

// NHWC [2, 1, 2, 2]: channel 0 holds 1, 2, 3, 4 and channel 1 holds 0, 0, 2, 2 in batch 1.
const batch1 = [1, 0, 2, 0, 3, 2, 4, 2];
const batch2 = [0, 5, -1, 1, 2, 1, 3, 1];

describe('BatchNorm2d (NHWC)', () => {
  it('has PyTorch names and initial buffers', () => {
    const bn = new BatchNorm2d(2);
    expect(Object.keys(bn.stateDict())).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expectClose(bn.runningVar!, [1, 1], 0);
    expect(bn.numBatchesTracked!.dtype).toBe('int32');
  });

  it('normalises with batch statistics and updates running stats with the unbiased variance', () => {
    const bn = new BatchNorm2d(2);
    const x1 = tf.tensor4d(batch1, [2, 1, 2, 2]);
    const y1 = bn.forward(x1);
    const s1 = stats(batch1, 2);
    // Hand values for batch 1: means 2.5 and 1, biased variances 1.25 and 1, unbiased 5/3 and 4/3.
    expect(s1.mean).toEqual([2.5, 1]);
    expect(s1.varU[0]).toBeCloseTo(5 / 3, 12);
    expectClose(y1, batch1.map((v, i) => (v - s1.mean[i % 2]!) / Math.sqrt(s1.varB[i % 2]! + 1e-5)));
    bn.forward(tf.tensor4d(batch2, [2, 1, 2, 2]));
    const s2 = stats(batch2, 2);
    const rm = [0, 1].map((c) => 0.9 * (0.9 * 0 + 0.1 * s1.mean[c]!) + 0.1 * s2.mean[c]!);
    const rv = [0, 1].map((c) => 0.9 * (0.9 * 1 + 0.1 * s1.varU[c]!) + 0.1 * s2.varU[c]!);
    expectClose(bn.runningMean!, rm);
    expectClose(bn.runningVar!, rv);
    expect(values(bn.numBatchesTracked!)).toEqual([2]);

    // Eval mode uses the running statistics and the affine parameters, and leaves the buffers alone.
    bn.weight!.variable.assign(tf.tensor1d([2, -1]));
    bn.bias!.variable.assign(tf.tensor1d([0.5, 0.25]));
    bn.eval();
    const x = [1, 2, -3, 0.5];
    const y = bn.forward(tf.tensor4d(x, [1, 2, 1, 2]));
    const w = [2, -1];
    const b = [0.5, 0.25];
    expectClose(y, x.map((v, i) => ((v - rm[i % 2]!) / Math.sqrt(rv[i % 2]! + 1e-5)) * w[i % 2]! + b[i % 2]!));
    expectClose(bn.runningMean!, rm);
    expect(values(bn.numBatchesTracked!)).toEqual([2]);
  });

  it('momentum null keeps a cumulative average', () => {
    const bn = new BatchNorm2d(2, { momentum: null });
    bn.forward(tf.tensor4d(batch1, [2, 1, 2, 2]));
    bn.forward(tf.tensor4d(batch2, [2, 1, 2, 2]));
    const s1 = stats(batch1, 2);
    const s2 = stats(batch2, 2);
    expectClose(bn.runningMean!, [0, 1].map((c) => (s1.mean[c]! + s2.mean[c]!) / 2));
    expectClose(bn.runningVar!, [0, 1].map((c) => (s1.varU[c]! + s2.varU[c]!) / 2));
  });

  it('without running stats uses batch statistics in eval too; rejects one value per channel', () => {
    const bn = new BatchNorm2d(2, { trackRunningStats: false, affine: false });
    expect(Object.keys(bn.stateDict())).toEqual([]);
    bn.eval();
    const s = stats(batch1, 2);
    expectClose(bn.forward(tf.tensor4d(batch1, [2, 1, 2, 2])), batch1.map((v, i) => (v - s.mean[i % 2]!) / Math.sqrt(s.varB[i % 2]! + 1e-5)));
    expect(() => new BatchNorm2d(2).forward(tf.ones([1, 1, 1, 2]))).toThrow(/more than 1 value per channel/);
    expect(() => new BatchNorm2d(2, { momentum: 2 })).toThrow(MisconfigurationError);
  });
});

describe('BatchNorm1d', () => {
  it('normalises [B, C] and [B, L, C] per channel', () => {
    const bn = new BatchNorm1d(2);
    const s = stats(batch1, 2);
    const expected = batch1.map((v, i) => (v - s.mean[i % 2]!) / Math.sqrt(s.varB[i % 2]! + 1e-5));
    expectClose(bn.forward(tf.tensor2d(batch1, [4, 2])), expected);
    expectClose(bn.forward(tf.tensor3d(batch1, [2, 2, 2])), expected);
    expect(() => bn.forward(tf.ones([4, 3]))).toThrow(/BatchNorm1d/);
  });
});

describe('LayerNorm', () => {
  it('normalises the last axis with weight and bias', () => {
    const ln = new LayerNorm(3);
    ln.weight!.variable.assign(tf.tensor1d([1, 2, 3]));
    ln.bias!.variable.assign(tf.tensor1d([0, 0, 1]));
    // Row [1, 2, 3]: mean 2, variance 2/3. Row [0, 0, 6]: mean 2, variance 8.
    const r1 = Math.sqrt(2 / 3 + 1e-5);
    const r2 = Math.sqrt(8 + 1e-5);
    expectClose(ln.forward(tf.tensor2d([[1, 2, 3], [0, 0, 6]])), [-1 / r1, 0, 3 / r1 + 1, -2 / r2, -4 / r2, (3 * 4) / r2 + 1]);
    expect(Object.keys(ln.stateDict())).toEqual(['weight', 'bias']);
  });

  it('normalises over several trailing axes', () => {
    const ln = new LayerNorm([2, 2], { elementwiseAffine: false });
    expect(ln.parameters()).toHaveLength(0);
    // One sample [[1, 3], [5, 7]]: mean 4, variance 5.
    const r = Math.sqrt(5 + 1e-5);
    expectClose(ln.forward(tf.tensor3d([[[1, 3], [5, 7]]])), [-3 / r, -1 / r, 1 / r, 3 / r]);
    expect(() => ln.forward(tf.ones([2, 3]))).toThrow(/normalizedShape/);
  });
});
