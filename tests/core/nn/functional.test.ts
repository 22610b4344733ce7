import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { F } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { expectClose, fixture, values } from './helpers.js';

const logits = (): tf.Tensor => tf.tensor2d([
  [1, 2, 3],
  [1, 0, -1],
]);
// Both rows have log-sum-exp = max + log(1 + e⁻¹ + e⁻²).
const lse0 = Math.log(1 + Math.exp(-1) + Math.exp(-2));

describe('crossEntropy', () => {
  it('matches -log softmax at the label, with mean/sum/none reductions', () => {
    const labels = tf.tensor1d([2, 0], 'int32');
    const perSample = [lse0, lse0]; // -logp(label) = lse - x_label = lse0 for both rows
    expectClose(F.crossEntropy(logits(), labels, { reduction: 'none' }), perSample);
    expectClose(F.crossEntropy(logits(), labels), [lse0]);
    expectClose(F.crossEntropy(logits(), labels, { reduction: 'sum' }), [2 * lse0]);
    // A different label gives a different value: the gather really uses the label.
    expectClose(F.crossEntropy(logits(), tf.tensor1d([0, 2], 'int32')), [2 + lse0]);
  });

  it('applies label smoothing as (1-ε)·nll + ε·mean(-log p)', () => {
    const eps = 0.1;
    // Row 1: -log p = [2, 1, 0] + lse0; mean over classes = 1 + lse0. Same for row 2.
    const expected = (1 - eps) * lse0 + eps * (1 + lse0);
    expectClose(F.crossEntropy(logits(), tf.tensor1d([2, 0], 'int32'), { labelSmoothing: eps }), [expected]);
  });

  it('accepts class probabilities as targets', () => {
    const soft = tf.tensor2d([
      [0, 0.5, 0.5],
      [1, 0, 0],
    ]);
    const row1 = 0.5 * (1 + lse0) + 0.5 * lse0;
    expectClose(F.crossEntropy(logits(), soft, { reduction: 'none' }), [row1, lse0]);
  });

  it('rejects bad options and shapes', () => {
    expect(() => F.crossEntropy(logits(), tf.tensor1d([0, 1], 'int32'), { labelSmoothing: 2 })).toThrow(MisconfigurationError);
    expect(() => F.crossEntropy(logits(), tf.tensor1d([0, 1], 'int32'), { reduction: 'avg' as 'mean' })).toThrow(/`reduction`/);
    expect(() => F.crossEntropy(logits(), tf.tensor1d([0, 1, 2], 'int32'))).toThrow(/target/);
  });
});

describe('binaryCrossEntropyWithLogits', () => {
  const sig = (x: number): number => 1 / (1 + Math.exp(-x));
  const bce = (x: number, y: number): number => -(y * Math.log(sig(x)) + (1 - y) * Math.log(1 - sig(x)));

  it('matches -(y log σ(x) + (1-y) log(1-σ(x))) and stays finite for large logits', () => {
    const x = [0, 2, -3, 0.5];
    const y = [1, 0, 0.5, 1];
    expectClose(F.binaryCrossEntropyWithLogits(tf.tensor1d(x), tf.tensor1d(y), { reduction: 'none' }), x.map((v, i) => bce(v, y[i]!)));
    expectClose(F.binaryCrossEntropyWithLogits(tf.tensor1d(x), tf.tensor1d(y)), [x.reduce((s, v, i) => s + bce(v, y[i]!), 0) / 4]);
    expectClose(F.binaryCrossEntropyWithLogits(tf.tensor1d([100, -100]), tf.tensor1d([0, 1]), { reduction: 'none' }), [100, 100], 1e-3);
  });

  it('weights the positive term by posWeight', () => {
    const out = F.binaryCrossEntropyWithLogits(tf.tensor2d([[1, 1]]), tf.tensor2d([[1, 0]]), { posWeight: tf.tensor1d([2, 2]), reduction: 'none' });
    expectClose(out, [2 * bce(1, 1), bce(1, 0)]);
  });
});

describe('activations, softmax, normalize', () => {
  it('gelu is exact erf GELU; quickGelu is x·σ(1.702x)', () => {
    // Φ(1) = 0.841344746, Φ(-1) = 0.158655254 (standard normal table).
    expectClose(F.gelu(tf.tensor1d([1, -1, 0, 3])), [0.841344746, -0.158655254, 0, 3 * 0.998650102], 2e-6);
    expectClose(F.gelu(tf.tensor1d([1]), 'tanh'), [0.841192], 1e-5);
    expectClose(F.quickGelu(tf.tensor1d([1, -2])), [1 / (1 + Math.exp(-1.702)), -2 / (1 + Math.exp(3.404))]);
  });

  it('softmax and logSoftmax work along any axis', () => {
    const x = fixture([3, 4]);
    const byCols = F.softmax(x, 0);
    expectClose(byCols, tf.transpose(tf.softmax(tf.transpose(x))));
    expectClose(tf.sum(byCols, 0), [1, 1, 1, 1]);
    expectClose(F.logSoftmax(x, 0), tf.log(byCols));
    expectClose(F.logSoftmax(x), tf.log(tf.softmax(x)));
  });

  it('normalize gives unit L2 rows and a finite gradient at zero', () => {
    expectClose(F.normalize(tf.tensor2d([[3, 4], [0, 0]])), [0.6, 0.8, 0, 0]);
    expectClose(F.normalize(tf.tensor2d([[3, 0], [4, 0]]), { axis: 0 }), [0.6, 0, 0.8, 0]);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(F.normalize(x), tf.tensor2d([[1, 2]]))))(tf.zeros([1, 2]));
    expect(values(g).every(Number.isFinite)).toBe(true);
  });

  it('linear folds leading axes', () => {
    const w = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const x = tf.tensor3d([[[1, 1]], [[2, -1]]]);
    const y = F.linear(x, w, tf.tensor1d([0.5, 0, -1]));
    expect(y.shape).toEqual([2, 1, 3]);
    expectClose(y, [3.5, 7, 10, 0.5, 2, 3]);
  });
});

describe('dropout', () => {
  it('is seeded, scales survivors by 1/(1-p), and is the identity in eval', () => {
    const x = tf.ones([64]);
    seedEverything(3);
    const a = values(F.dropout(x, 0.25, true));
    seedEverything(3);
    const b = values(F.dropout(x, 0.25, true));
    expect(a).toEqual(b);
    expect(a.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    const zeros = a.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(4);
    expect(zeros).toBeLessThan(32);
    expect(F.dropout(x, 0.25, false)).toBe(x);
    expect(() => F.dropout(x, 1.5, true)).toThrow(MisconfigurationError);
  });
});

describe('scaledDotProductAttention', () => {
  it('matches softmax(q·kᵀ/√d + mask)·v, with boolean masks meaning "attend" as PyTorch', () => {
    const q = fixture([2, 3, 4], 1);
    const k = fixture([2, 5, 4], 2);
    const v = fixture([2, 5, 2], 3);
    const manual = (add: tf.Tensor | null): tf.Tensor => {
      let s = tf.div(tf.matMul(q, k, false, true), 2);
      if (add) s = tf.add(s, add);
      return tf.matMul(tf.softmax(s), v);
    };
    expectClose(F.scaledDotProductAttention(q, k, v), manual(null));
    const keep = tf.tensor2d([[1, 1, 0, 1, 0], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]], [3, 5], 'bool');
    const additive = tf.where(keep, 0, -1e9);
    expectClose(F.scaledDotProductAttention(q, k, v, keep), manual(additive));
    expectClose(F.scaledDotProductAttention(q, k, v, null, { isCausal: true }), manual(F.causalMask(3, 5)));
    expectClose(F.causalMask(2, 3), [0, -Infinity, -Infinity, 0, 0, -Infinity], 0);
  });
});
