import { describe, expect, it } from 'vitest';
import { backward } from '../../../core/autograd.js';
import {
  AdaptiveAvgPool2d,
  AvgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Embedding,
  Flatten,
  GELU,
  Identity,
  LayerNorm,
  Linear,
  type Module,
  MultiheadAttention,
  F,
  QuickGELU,
  ReLU,
  Sequential,
  Sigmoid,
  Tanh,
} from '../../../core/nn/index.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { fixture, values } from './helpers.js';

interface Case {
  name: string;
  make: () => Module;
  input: () => Tensor;
  run: (m: Module, x: Tensor) => Tensor[];
  /** Whether d(loss)/d(input) exists (not for integer indices). */
  inputGrad?: boolean;
}

type Fwd = { forward(x: Tensor): Tensor };
const single = (m: Module, x: Tensor): Tensor[] => [(m as unknown as Fwd).forward(x)];

const cases: Case[] = [
  { name: 'Linear', make: () => new Linear(4, 3), input: () => fixture([2, 5, 4]), run: single },
  { name: 'Conv2d', make: () => new Conv2d(3, 4, 3, { padding: 1 }), input: () => fixture([2, 5, 5, 3]), run: single },
  { name: 'Conv2d stride 2, padding [1, 0]', make: () => new Conv2d(2, 3, [3, 2], { stride: 2, padding: [1, 0] }), input: () => fixture([1, 6, 5, 2]), run: single },
  { name: 'Conv2d groups 2', make: () => new Conv2d(4, 6, 3, { groups: 2, padding: 1 }), input: () => fixture([1, 4, 4, 4]), run: single },
  { name: 'Conv2d depthwise', make: () => new Conv2d(3, 6, 3, { groups: 3, stride: 2, padding: 1 }), input: () => fixture([1, 5, 5, 3]), run: single },
  { name: 'BatchNorm2d', make: () => new BatchNorm2d(3), input: () => fixture([2, 3, 3, 3]), run: single },
  { name: 'BatchNorm1d', make: () => new BatchNorm1d(3), input: () => fixture([4, 3]), run: single },
  { name: 'LayerNorm', make: () => new LayerNorm(4), input: () => fixture([2, 3, 4]), run: single },
  { name: 'Embedding', make: () => new Embedding(6, 3), input: () => tf.tensor2d([[0, 5, 2], [2, 2, 1]], [2, 3], 'int32'), run: single, inputGrad: false },
  {
    name: 'MultiheadAttention',
    make: () => new MultiheadAttention(4, 2),
    input: () => fixture([2, 3, 4]),
    run: (m, x) => {
      const pad = tf.tensor2d([[false, false, true], [false, false, false]], [2, 3], 'bool');
      const causal = F.causalMask(3);
      const [out, w] = (m as MultiheadAttention).forward(x, x, x, { attnMask: causal, keyPaddingMask: pad, needWeights: true });
      pad.dispose();
      causal.dispose();
      return [out, w!];
    },
  },
  {
    name: 'Sequential(Linear, GELU, Dropout, QuickGELU, ReLU, Sigmoid, Tanh, Linear)',
    make: () => new Sequential(new Linear(4, 8), new GELU(), new Dropout(0.1), new QuickGELU(), new ReLU(), new Sigmoid(), new Tanh(), new Linear(8, 2)),
    input: () => fixture([3, 4]),
    run: single,
  },
  { name: 'AvgPool2d', make: () => new AvgPool2d(3, { stride: 2, padding: 1 }), input: () => fixture([1, 5, 5, 2]), run: single },
  { name: 'AdaptiveAvgPool2d', make: () => new AdaptiveAvgPool2d([2, 3]), input: () => fixture([1, 5, 4, 2]), run: single },
  { name: 'Flatten', make: () => new Flatten(), input: () => fixture([2, 2, 2, 3]), run: single },
  { name: 'Identity', make: () => new Identity(), input: () => fixture([2, 3]), run: single },
];

describe.each(cases)('$name', (c) => {
  it('backward gives finite, non-zero gradients of the right shapes (parameters and input)', () => {
    const m = c.make();
    const x = c.input();
    // A fixed random weighting of the outputs: a plain sum would have zero gradient through normalisations.
    const lossFn = (input: Tensor): Tensor => tf.addN(c.run(m, input).map((y, i) => tf.sum(tf.mul(y, fixture(y.shape, 11 + i)))));
    const loss = backward(m.parameters(), () => lossFn(x));
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.shape, name).toEqual(p.shape);
      const g = values(p.grad!);
      expect(g.every(Number.isFinite), name).toBe(true);
      expect(g.some((v) => v !== 0), name).toBe(true);
    }
    if (c.inputGrad !== false) {
      const gx = tf.grad(lossFn)(x);
      expect(gx.shape).toEqual(x.shape);
      const g = values(gx);
      expect(g.every(Number.isFinite)).toBe(true);
      expect(g.some((v) => v !== 0)).toBe(true);
    }
    m.dispose();
  });

  it('forward leaves no tensor behind but its outputs, in train and eval mode', () => {
    const m = c.make();
    const x = c.input();
    for (const mode of [true, false]) {
      m.train(mode);
      const before = tf.memory().numTensors;
      const outs = c.run(m, x);
      const fresh = outs.filter((t) => t !== x);
      expect(tf.memory().numTensors - before).toBe(fresh.length);
      fresh.forEach((t) => t.dispose());
      expect(tf.memory().numTensors).toBe(before);
    }
    m.dispose();
  });
});

describe('Conv2d gradients are exact', () => {
  // The loss Σ y·r is linear in the weight, so a central difference with step 1 is exact
  // (up to float rounding) and checks tfjs's backprop through transpose/split/depthwise.
  it.each([
    ['groups 2', () => new Conv2d(4, 2, [2, 3], { groups: 2, stride: 2, padding: [1, 0] }), [1, 5, 4, 4]],
    ['depthwise', () => new Conv2d(2, 4, 3, { groups: 2, stride: 2, padding: [0, 1] }), [1, 5, 4, 2]],
  ] as const)('%s', (_, make, shape) => {
    const conv = make();
    const x = fixture([...shape], 5);
    const r = fixture([...conv.forward(x).shape], 6);
    const loss = (): number => tf.tidy(() => tf.sum(tf.mul(conv.forward(x), r)).dataSync()[0]!);
    backward(conv.parameters(), () => tf.sum(tf.mul(conv.forward(x), r))).dispose();
    const grad = values(conv.weight.grad!);
    const w0 = values(conv.weight.variable);
    const numeric = w0.map((_, i) => {
      const at = (d: number): number => {
        const w = [...w0];
        w[i]! += d;
        conv.weight.variable.assign(tf.tensor(w, conv.weight.shape));
        return loss();
      };
      return (at(1) - at(-1)) / 2;
    });
    numeric.forEach((n, i) => expect(grad[i]).toBeCloseTo(n, 3));
    conv.dispose();
  });
});
