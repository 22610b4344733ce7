import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import { setBlasEnabled } from '../../core/native/backend.js';
import { NATIVE, compareBackends, expectClose, rand, runOn, setupNative, t } from './helpers.js';

beforeAll(setupNative);
afterAll(() => { setBlasEnabled(true); });

// Tolerance grows with the inner dimension: summation order differs between the kernels.
const tol = (k: number): [number, number] => [2e-5, 2e-6 * Math.sqrt(k + 1)];

for (const blas of [true, false]) {
  describe(`matmul and conv on ${blas ? 'the BLAS (when present)' : 'the built-in GEMM'}`, () => {
    beforeAll(() => { setBlasEnabled(blas); });

    it('BatchMatMul: shapes, transposes, batch broadcasting, size 0 and 1', () => {
      const cases: [number[], number[]][] = [
        [[1, 1], [1, 1]], [[3, 5], [5, 7]], [[33, 65], [65, 17]], [[0, 4], [4, 3]], [[4, 0], [0, 3]],
        [[2, 3, 5], [2, 5, 4]], [[2, 3, 5], [5, 4]], [[3, 5], [6, 5, 4]], [[1, 3, 5], [4, 5, 2]],
        [[2, 3, 8, 16], [2, 3, 16, 8]], [[129, 300], [300, 70]],
      ];
      for (const [sa, sb] of cases) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const ash = ta ? [...sa.slice(0, -2), sa[sa.length - 1], sa[sa.length - 2]] : sa;
            const bsh = tb ? [...sb.slice(0, -2), sb[sb.length - 1], sb[sb.length - 2]] : sb;
            const a = rand(ash);
            const b = rand(bsh);
            const k = sa[sa.length - 1];
            compareBackends(() => tf.matMul(t(a), t(b), ta, tb), ...tol(k), `${sa}x${sb} ${ta} ${tb}`);
          }
        }
      }
    });

    it('BatchMatMul broadcasting batch dimensions on both sides (checked against explicit tiles)', () => {
      // tfjs cpu gets [2,1,3,5] x [1,4,5,2] wrong (it indexes batches modulo), so the reference
      // tiles both operands to [2,4,...] first
      const a = rand([2, 1, 3, 5]);
      const b = rand([1, 4, 5, 2]);
      const got = runOn(NATIVE, () => tf.matMul(t(a), t(b)));
      const ref = runOn('cpu', () => tf.matMul(tf.tile(t(a), [1, 4, 1, 1]), tf.tile(t(b), [2, 1, 1, 1])));
      expect(got[0].shape).toEqual([2, 4, 3, 2]);
      expectClose(got[0].values, ref[0].values, ...tol(5));
    });

    it('_FusedMatMul with bias and activations', () => {
      for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'] as const) {
        const a = rand([2, 7, 9]);
        const b = rand([9, 5]);
        const bias = rand([5]);
        compareBackends(() => tf.fused.matMul({ a: t(a), b: t(b), bias: t(bias), activation, leakyreluAlpha: 0.1 }),
          ...tol(9), activation);
        compareBackends(() => tf.fused.matMul({ a: t(a), b: t(b), transposeB: false, activation }), ...tol(9), `${activation} no bias`);
      }
    });

    it('Conv2D and both backprops: padding, strides, dilations, 1x1 and patch embeddings', () => {
      const cases: { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' | number; d?: number }[] = [
        { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, p: 'same' },
        { x: [1, 8, 8, 2], f: [3, 3, 2, 5], s: 2, p: 'valid' },
        { x: [2, 9, 7, 3], f: [2, 3, 3, 2], s: [2, 1], p: 1 },
        { x: [1, 9, 9, 2], f: [3, 3, 2, 3], s: 1, p: 'same', d: 2 },
        { x: [3, 5, 5, 4], f: [1, 1, 4, 6], s: 1, p: 'valid' },
        { x: [2, 32, 32, 3], f: [8, 8, 3, 16], s: 8, p: 'valid' },
        { x: [1, 1, 1, 1], f: [1, 1, 1, 1], s: 1, p: 'valid' },
      ];
      for (const c of cases) {
        const x = rand(c.x);
        const f = rand(c.f);
        const label = JSON.stringify(c);
        const k = c.f[0] * c.f[1] * c.f[2];
        compareBackends(() => tf.conv2d(t(x) as tf.Tensor4D, t(f) as tf.Tensor4D, c.s, c.p, 'NHWC', c.d ?? 1), ...tol(k), label);
        // gradients go through Conv2DBackpropInput and Conv2DBackpropFilter (tfjs has no
        // gradient for dilated convolutions)
        if ((c.d ?? 1) === 1) compareBackends(() => {
          const g = tf.grads((xi: tf.Tensor, fi: tf.Tensor) =>
            tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, c.s, c.p, 'NHWC', c.d ?? 1).square().sum());
          return g([t(x), t(f)]);
        }, 1e-4, 1e-4 * Math.sqrt(k), `${label} grads`);
      }
    });
  });
}
