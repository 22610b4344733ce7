import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import {
  adamwStep, gelu, geluComposed, layerNorm, layerNormComposed, nativeActive, scaledSoftmax, softmaxComposed,
} from '../../core/native/fused.js';
import type { GeluKind } from '../../core/native/fused.js';
import { NATIVE, expectClose, rand, runOn, setupNative, t } from './helpers.js';

beforeAll(setupNative);

/** Values and gradients (w.r.t. every input) of sum(f(inputs) * w). */
function valueAndGrads(f: (...xs: Tensor[]) => Tensor, specs: ReturnType<typeof rand>[], wSpec: ReturnType<typeof rand>): Tensor[] {
  const xs = specs.map(t);
  const w = t(wSpec);
  const y = f(...xs);
  const g = tf.grads((...ins: Tensor[]) => f(...ins).mul(w).sum())(xs);
  return [y, ...g];
}

/** The fused op on lightclip-cpu against the unfused composition on tfjs cpu. */
function compareFused(fused: (...xs: Tensor[]) => Tensor, composed: (...xs: Tensor[]) => Tensor,
  specs: ReturnType<typeof rand>[], outShape: number[], rtol: number, atol: number, label: string): void {
  const w = rand(outShape);
  const got = runOn(NATIVE, () => {
    expect(nativeActive()).toBe(true);
    return valueAndGrads(fused, specs, w);
  });
  const ref = runOn('cpu', () => valueAndGrads(composed, specs, w));
  ref.forEach((r, i) => {
    expect(got[i].shape).toEqual(r.shape);
    expectClose(got[i].values, r.values, rtol, atol, `${label} ${i === 0 ? 'value' : `grad ${i - 1}`}`);
  });
}

describe('fused ops: values and exact gradients against the unfused composition', () => {
  it('LayerNorm over odd widths, one row, and a large mean', () => {
    for (const shape of [[3, 5], [1, 1, 7], [2, 4, 33], [6, 768]]) {
      const d = shape[shape.length - 1];
      const x = rand(shape, -2, 2);
      const g = rand([d], 0.5, 1.5);
      const b = rand([d]);
      compareFused((xi, gi, bi) => layerNorm(xi, gi, bi, 1e-5), (xi, gi, bi) => layerNormComposed(xi, gi, bi, 1e-5),
        [x, g, b], shape, 1e-4, 1e-5, `layerNorm ${shape}`);
    }
    const shifted = rand([4, 16], 99, 101);
    compareFused((xi, gi, bi) => layerNorm(xi, gi, bi), (xi, gi, bi) => layerNormComposed(xi, gi, bi),
      [shifted, rand([16], 0.5, 1.5), rand([16])], [4, 16], 2e-3, 2e-3, 'layerNorm mean 100');
  });

  for (const kind of ['quick', 'erf', 'tanh'] as GeluKind[]) {
    it(`GELU (${kind})`, () => {
      for (const shape of [[1], [5, 7], [3, 1000]]) {
        compareFused((x) => gelu(x, kind), (x) => geluComposed(x, kind), [rand(shape, -6, 6)], shape, 1e-4, 1e-5, `${kind} ${shape}`);
      }
    });
  }

  it('scaled softmax and log-softmax (attention scores with a mask)', () => {
    for (const log of [false, true]) {
      for (const shape of [[2, 3, 5, 5], [4, 1], [3, 50]]) {
        compareFused((x) => scaledSoftmax(x, 0.125, log), (x) => softmaxComposed(x, 0.125, log),
          [rand(shape, -20, 20)], shape, 1e-4, 1e-5, `softmax log=${log} ${shape}`);
      }
    }
    // a causal mask row: masked entries get exactly zero probability and zero gradient
    const masked = { shape: [2, 3], data: Float32Array.from([1, -1e9, -1e9, 0.5, 2, -1e9]) };
    compareFused((x) => scaledSoftmax(x, 1), (x) => softmaxComposed(x, 1), [masked], [2, 3], 1e-5, 1e-7, 'masked');
  });

  it('off the native backend the fused functions are the compositions', () => {
    const x = rand([3, 8]);
    const got = runOn('cpu', () => {
      expect(nativeActive()).toBe(false);
      return [gelu(t(x), 'quick'), scaledSoftmax(t(x), 2)];
    });
    const ref = runOn('cpu', () => [geluComposed(t(x), 'quick'), softmaxComposed(t(x), 2)]);
    got.forEach((g, i) => expectClose(g.values, ref[i].values, 0, 0));
  });
});

describe('AdamW in place', () => {
  const init = rand([5, 7]);
  const gradients = [rand([5, 7]), rand([5, 7]), rand([5, 7])];

  function steps(backend: string): Float32Array[] {
    const prev = tf.getBackend();
    tf.setBackend(backend);
    try {
      const start = t(init);
      const p = tf.variable(start); // shares storage with `start`: the update must not change it
      const m = tf.variable(tf.zeros([5, 7]));
      const v = tf.variable(tf.zeros([5, 7]));
      gradients.forEach((gs, i) => {
        const g = t(gs);
        adamwStep([{ param: p, grad: g, m, v }], { lr: 0.01, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2, step: i + 1 });
        g.dispose();
      });
      expect(Array.from(start.dataSync())).toEqual(Array.from(init.data));
      const out = [p, m, v].map((x) => x.dataSync().slice() as Float32Array);
      for (const x of [start, p, m, v]) x.dispose();
      return out;
    } finally {
      tf.setBackend(prev);
    }
  }

  it('matches the tf-ops update over three steps and leaves shared tensors alone', () => {
    const native = steps(NATIVE);
    const ref = steps('cpu');
    native.forEach((a, i) => expectClose(a, ref[i], 1e-5, 1e-7, ['param', 'm', 'v'][i]));
    // the parameters did move
    expect(native[0].some((x, i) => Math.abs(x - init.data[i]) > 1e-4)).toBe(true);
  });
});
