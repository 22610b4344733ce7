import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { nativeKernelNames } from '../../core/native/backend.js';
import { NATIVE, compareBackends, rand, setupNative, t } from './helpers.js';

beforeAll(setupNative);

type Pad = 'valid' | 'same' | number;
interface PoolCase { shape: [number, number, number, number]; filter: [number, number]; stride: [number, number]; pad: Pad }

// Overlapping windows (stride < filter), 'same' padding with partial windows, explicit
// padding, odd sizes, one channel, size-1 and size-0 dimensions, and the ModifiedResNet's
// anti-aliasing pool (2x2 stride 2 on an even map).
const CASES: PoolCase[] = [
  { shape: [2, 8, 8, 16], filter: [2, 2], stride: [2, 2], pad: 'valid' },
  { shape: [1, 7, 9, 3], filter: [3, 3], stride: [2, 2], pad: 'same' },
  { shape: [2, 6, 5, 5], filter: [3, 2], stride: [1, 1], pad: 'same' },
  { shape: [1, 5, 5, 1], filter: [3, 3], stride: [1, 2], pad: 'valid' },
  { shape: [3, 4, 4, 40], filter: [3, 3], stride: [2, 2], pad: 1 },
  { shape: [1, 1, 1, 4], filter: [1, 1], stride: [1, 1], pad: 'valid' },
  { shape: [2, 9, 9, 8], filter: [5, 5], stride: [3, 3], pad: 'same' },
  { shape: [0, 4, 4, 3], filter: [2, 2], stride: [2, 2], pad: 'valid' },
  { shape: [2, 4, 4, 0], filter: [2, 2], stride: [2, 2], pad: 'valid' },
];

function label(c: PoolCase): string {
  return `${c.shape} f${c.filter} s${c.stride} ${c.pad}`;
}

describe('pooling kernels match tfjs cpu', () => {
  it('registers AvgPool, MaxPool and their gradients natively', () => {
    for (const k of ['AvgPool', 'AvgPoolGrad', 'MaxPool', 'MaxPoolGrad']) expect(nativeKernelNames()).toContain(k);
  });

  it('AvgPool and MaxPool forward', () => {
    for (const c of CASES) {
      const x = rand(c.shape, -2, 2);
      const x4 = (): tf.Tensor4D => t(x) as tf.Tensor4D;
      compareBackends(() => tf.avgPool(x4(), c.filter, c.stride, c.pad), 1e-6, 1e-6, `avg ${label(c)}`);
      compareBackends(() => tf.maxPool(x4(), c.filter, c.stride, c.pad), 0, 0, `max ${label(c)}`);
    }
  });

  it('gradients (AvgPoolGrad, MaxPoolGrad) with a non-uniform upstream gradient', () => {
    for (const c of CASES) {
      const x = rand(c.shape, -2, 2);
      for (const kind of ['avg', 'max'] as const) {
        const pool = (xi: Tensor): Tensor => (kind === 'avg' ? tf.avgPool : tf.maxPool)(xi as tf.Tensor4D, c.filter, c.stride, c.pad);
        // weight the output by a fixed pattern so that each window's gradient differs
        compareBackends(() => tf.grad((xi: Tensor) => {
          const y = pool(xi);
          return y.mul(tf.range(0, y.size, 1, 'float32').reshape(y.shape).sin()).sum();
        })(t(x)), 1e-5, 1e-6, `${kind} grad ${label(c)}`);
      }
    }
  });

  it('MaxPool keeps the first of equal maxima and skips NaN, as tfjs', () => {
    const vals = [1, 3, 3, 0, NaN, 2, -Infinity, 5, 5, 5, 1, NaN, 0, 0, 0, 0];
    const x = { shape: [1, 4, 4, 1], data: Float32Array.from(vals) };
    compareBackends(() => tf.maxPool(t(x) as tf.Tensor4D, 2, 2, 'valid'), 0, 0, 'ties and NaN');
    compareBackends(() => tf.grad((xi: Tensor) => tf.maxPool(xi as tf.Tensor4D, 2, 2, 'valid').sum())(t(x)), 0, 0, 'ties grad');
  });

  it('a 1x1 pool that changes nothing is left to the cpu kernel (identity)', () => {
    const x = rand([2, 3, 3, 4]);
    compareBackends(() => tf.avgPool(t(x) as tf.Tensor4D, 1, 1, 'valid'), 0, 0, 'identity');
  });
});

describe('ScatterNd matches tfjs cpu', () => {
  it('rows with duplicates (F.embedding gradient), element indices and empty updates', () => {
    const upd = rand([6, 5]);
    const idx = tf.tensor2d([[3], [0], [3], [7], [0], [3]], [6, 1], 'int32');
    compareBackends(() => tf.scatterND(idx, t(upd), [8, 5]), 1e-6, 1e-6, 'rows');
    const idx2 = tf.tensor2d([[1, 2], [0, 0], [1, 2]], [3, 2], 'int32');
    const upd2 = rand([3]);
    compareBackends(() => tf.scatterND(idx2, t(upd2), [2, 3]), 1e-6, 1e-6, 'elements');
    const idx3 = tf.tensor2d([[0, 1], [2, 0]], [2, 2], 'int32');
    const upd3 = rand([2, 4]);
    compareBackends(() => tf.scatterND(idx3, t(upd3), [3, 2, 4]), 1e-6, 1e-6, 'slices of rank 3');
    const none = tf.tensor2d([], [0, 1], 'int32');
    compareBackends(() => tf.scatterND(none, t(rand([0, 5])), [4, 5]), 0, 0, 'no updates');
    tf.dispose([idx, idx2, idx3, none]);
  });

  it('rejects out-of-range indices like tfjs', () => {
    tf.setBackend(NATIVE);
    try {
      const bad = tf.tensor2d([[1], [4]], [2, 1], 'int32');
      expect(() => tf.scatterND(bad, tf.ones([2, 3]), [4, 3])).toThrow(/Invalid indices: 4 does not index into 4,3/);
      bad.dispose();
    } finally {
      tf.setBackend('cpu');
    }
  });
});
