import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { nativeKernelNames } from '../../core/native/backend.js';
import { NATIVE, compareBackends, rand, runOn, setupNative, t } from './helpers.js';

beforeAll(setupNative);

const unary: [string, (x: Tensor) => Tensor, number, number][] = [
  // name, op, input range lo, hi
  ['Exp', tf.exp, -90, 90], ['Log', tf.log, 1e-6, 1e3], ['Sqrt', tf.sqrt, 0, 100], ['Rsqrt', tf.rsqrt, 1e-3, 100],
  ['Square', tf.square, -10, 10], ['Sigmoid', tf.sigmoid, -30, 30], ['Tanh', tf.tanh, -12, 12], ['Erf', tf.erf, -5, 5],
  ['Relu', tf.relu, -3, 3], ['Neg', tf.neg, -3, 3], ['Abs', tf.abs, -3, 3], ['Relu6', tf.relu6, -3, 9],
  ['Reciprocal', tf.reciprocal, 0.1, 10], ['Step', (x) => tf.step(x, 0.25), -2, 2], ['Log1p', tf.log1p, -0.9, 10],
  ['Softplus', tf.softplus, -20, 30], ['Elu', tf.elu, -5, 5], ['Expm1', tf.expm1, -5, 5],
];

describe('unary kernels match tfjs cpu', () => {
  for (const [name, op, lo, hi] of unary) {
    it(name, () => {
      expect(nativeKernelNames()).toContain(name);
      for (const shape of [[0], [1], [7], [3, 1, 5], [2, 33, 65], [70000]]) {
        const x = rand(shape, lo, hi);
        compareBackends(() => op(t(x)), 3e-6, 1e-6, `${name} ${shape}`);
      }
    });
  }

  it('special values: exp/log/sigmoid/tanh at 0, +-inf and NaN', () => {
    const specials = tf.tensor([0, -0, Infinity, -Infinity, Number.NaN, 1e-30, -1e-30, 88, -88, 100, -100]);
    for (const op of [tf.exp, tf.sigmoid, tf.tanh, tf.relu, tf.abs]) {
      compareBackends(() => op(specials.clone()), 3e-6, 1e-37, op.name);
    }
    // both sides use Abramowitz & Stegun 7.1.26, whose absolute error is 1.5e-7
    compareBackends(() => tf.erf(specials.clone()), 3e-6, 2e-7, 'erf');
    const pos = [0, Infinity, 1e-30, 1, 3.5e38];
    compareBackends(() => tf.log(tf.tensor(pos)), 3e-6, 0, 'log specials');
    compareBackends(() => tf.sqrt(tf.tensor(pos)), 3e-6, 0, 'sqrt specials');
    specials.dispose();
  });
});

const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ['Add', tf.add], ['Sub', tf.sub], ['Multiply', tf.mul], ['RealDiv', tf.div],
  ['Maximum', tf.maximum], ['Minimum', tf.minimum], ['SquaredDifference', tf.squaredDifference],
];

// every broadcasting pattern: equal, scalar either side, rank differences, size-1 in the middle,
// both sides broadcasting, size-0 dimensions
const patterns: [number[], number[]][] = [
  [[5], [5]], [[], [7]], [[7], []], [[], []], [[3, 4], [4]], [[4], [3, 4]], [[3, 1], [1, 4]],
  [[2, 3, 4], [3, 1]], [[2, 1, 4], [2, 3, 1]], [[1, 5, 1, 3], [4, 1, 2, 3]], [[6, 1, 7], [6, 5, 7]],
  [[2, 0, 3], [1, 3]], [[0], []], [[1, 1, 1], [1]], [[300, 257], [257]], [[300, 257], [300, 1]],
  [[2, 3, 4, 5, 6], [3, 1, 5, 1]], [[40000], [1]], [[1], [40000]],
];

describe('broadcasting binary kernels match tfjs cpu', () => {
  for (const [name, op] of binary) {
    it(name, () => {
      expect(nativeKernelNames()).toContain(name);
      for (const [sa, sb] of patterns) {
        const a = rand(sa, -3, 3);
        const b = rand(sb, 0.5, 3);
        compareBackends(() => op(t(a), t(b)), 1e-6, 1e-6, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      }
    });
  }

  it('NaN propagates through Maximum and Minimum', () => {
    const a = { shape: [4], data: Float32Array.from([Number.NaN, 1, 2, Number.NaN]) };
    const b = { shape: [4], data: Float32Array.from([0, Number.NaN, 3, Number.NaN]) };
    compareBackends(() => [tf.maximum(t(a), t(b)), tf.minimum(t(a), t(b))]);
  });

  it('AddN sums many tensors', () => {
    const xs = [rand([3, 17]), rand([3, 17]), rand([3, 17]), rand([3, 17])];
    compareBackends(() => tf.addN(xs.map(t)), 1e-6, 1e-6, 'AddN');
  });

  it('integer inputs fall through to the cpu kernels', () => {
    const a = tf.tensor([1, 2, 3], [3], 'int32');
    const got = runOn(NATIVE, () => tf.add(a, tf.scalar(2, 'int32')));
    expect(got[0].dtype).toBe('int32');
    expect(Array.from(got[0].values)).toEqual([3, 4, 5]);
    a.dispose();
  });
});

describe('Cast', () => {
  it('float32 <-> int32 and bool -> float32 match tfjs cpu', () => {
    const x = rand([5, 13], -100, 100);
    compareBackends(() => tf.cast(t(x), 'int32'), 0, 0, 'f32->i32');
    compareBackends(() => tf.cast(tf.cast(t(x), 'int32'), 'float32'), 0, 0, 'i32->f32');
    compareBackends(() => tf.cast(tf.greater(t(x), 0), 'float32'), 0, 0, 'bool->f32');
    compareBackends(() => tf.cast(t(x), 'bool'), 0, 0, 'f32->bool');
  });

  it('an int32 tensor cast to float32 feeds native kernels as real floats', () => {
    const got = runOn(NATIVE, () => tf.cast(tf.tensor([1, -2, 3], [3], 'int32'), 'float32').mul(0.5));
    expect(got[0].values).toBeInstanceOf(Float32Array);
    expect(Array.from(got[0].values)).toEqual([0.5, -1, 1.5]);
  });
});
