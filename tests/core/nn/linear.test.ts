import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { Flatten, Identity, Linear } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, fixture, values } from './helpers.js';

describe('Linear', () => {
  it('computes x·Wᵀ + b with W in [out, in] layout', () => {
    const lin = new Linear(2, 3);
    expect(lin.weight.shape).toEqual([3, 2]);
    lin.weight.variable.assign(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
    lin.bias!.variable.assign(tf.tensor1d([0.5, -1, 0]));
    // x = [[1, -1], [2, 0.5]]: row 1 → [1-2, 3-4, 5-6] + b, row 2 → [2+1, 6+2, 10+3] + b.
    expectClose(lin.forward(tf.tensor2d([[1, -1], [2, 0.5]])), [-0.5, -2, -1, 3.5, 7, 13]);
    const y3 = lin.forward(tf.tensor3d([[[1, -1]], [[2, 0.5]]]));
    expect(y3.shape).toEqual([2, 1, 3]);
    expect(lin.forward(tf.tensor1d([1, -1])).shape).toEqual([3]);
    expect(() => lin.forward(tf.ones([2, 3]))).toThrow(/expects 2/);
  });

  it('initialises weight and bias within ±1/sqrt(in) (PyTorch default) and supports bias: false', () => {
    const lin = new Linear(16, 32);
    const bound = 1 / Math.sqrt(16);
    const w = values(lin.weight.variable);
    expect(w.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(values(lin.bias!.variable).every((v) => Math.abs(v) <= bound)).toBe(true);
    const nb = new Linear(3, 2, { bias: false });
    expect(nb.bias).toBeNull();
    expect(Object.keys(nb.stateDict())).toEqual(['weight']);
    expect(() => new Linear(0, 2)).toThrow(MisconfigurationError);
    expect(() => new Linear(2.5, 2)).toThrow(/`inFeatures` must be an integer >= 1, got 2.5/);
  });
});

describe('Identity and Flatten', () => {
  it('Identity returns its input', () => {
    const x = fixture([2, 3]);
    expect(new Identity().forward(x)).toBe(x);
  });

  it('Flatten merges startDim..endDim', () => {
    const x = fixture([2, 3, 4, 5]);
    expect(new Flatten().forward(x).shape).toEqual([2, 60]);
    expect(new Flatten(1, 2).forward(x).shape).toEqual([2, 12, 5]);
    expect(new Flatten(0, -2).forward(x).shape).toEqual([24, 5]);
    expectClose(new Flatten().forward(x), x, 0);
    expect(() => new Flatten(3, 1).forward(x)).toThrow(/Flatten/);
  });
});
