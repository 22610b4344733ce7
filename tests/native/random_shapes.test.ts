/**
 * Seeded random shapes (ranks 0-5, dimensions 0-5) for the kernels whose index arithmetic is
 * most intricate: broadcasting, transposes, reductions, slices and batched matmul.
 */
import { beforeAll, describe, it } from 'vitest';

import { tf } from '../../core/tf.js';
import { compareBackends, rand, randomArray, setupNative, t } from './helpers.js';

beforeAll(setupNative);

// one uniform stream for all the shape choices, so that a failure message's case reproduces
const stream = randomArray(100000, 4242, 0, 1);
let pos = 0;
const int = (lo: number, hi: number): number => lo + Math.floor(stream[pos++ % stream.length] * (hi - lo + 1));
const shape = (rank: number, maxDim = 5): number[] => Array.from({ length: rank }, () => int(int(0, 9) === 0 ? 0 : 1, maxDim));
const shuffle = <T>(xs: T[]): T[] => {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = int(0, i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

describe('random shapes match tfjs cpu', () => {
  it('broadcasting add/mul/div/max', () => {
    for (let c = 0; c < 60; c++) {
      const out = shape(int(0, 5));
      // each operand drops leading dims and sets random dims to 1
      const mk = () => out.slice(int(0, out.length)).map((d) => (int(0, 2) === 0 ? 1 : d));
      const a = rand(mk());
      const b = rand(mk(), 0.5, 2);
      const label = `${JSON.stringify(a.shape)} ${JSON.stringify(b.shape)}`;
      compareBackends(() => [tf.add(t(a), t(b)), tf.mul(t(a), t(b)), tf.div(t(a), t(b)), tf.maximum(t(a), t(b))], 1e-6, 1e-6, label);
    }
  });

  it('transposes by random permutations', () => {
    for (let c = 0; c < 60; c++) {
      const s = shape(int(1, 6), 6);
      const perm = shuffle([...s.keys()]);
      const x = rand(s);
      compareBackends(() => tf.transpose(t(x), perm), 0, 0, `${s} ${perm}`);
    }
  });

  it('reductions over random axis sets', () => {
    for (let c = 0; c < 60; c++) {
      const s = shape(int(1, 5));
      const axes = [...s.keys()].filter(() => int(0, 1) === 1);
      if (axes.length === 0) axes.push(int(0, s.length - 1));
      const keep = int(0, 1) === 1;
      const x = rand(s);
      compareBackends(() => [tf.sum(t(x), axes, keep), tf.mean(t(x), axes, keep), tf.max(t(x), axes, keep)], 1e-5, 1e-6, `${s} ${axes} ${keep}`);
    }
  });

  it('random slices', () => {
    for (let c = 0; c < 60; c++) {
      const s = shape(int(1, 5)).map((d) => d + 1);
      const begin = s.map((d) => int(0, d - 1));
      const size = s.map((d, i) => int(0, d - begin[i]));
      const x = rand(s);
      compareBackends(() => tf.slice(t(x), begin, size), 0, 0, `${s} ${begin} ${size}`);
    }
  });

  it('batched matmul with random batch broadcasting', () => {
    for (let c = 0; c < 40; c++) {
      const [m, n, k] = [int(1, 9), int(1, 9), int(0, 9)];
      // (size-0 batch dims are excluded: tfjs cpu returns a non-empty result for them)
      const batch = shape(int(0, 2), 3).map((d) => Math.max(d, 1));
      // tfjs cpu broadcasts correctly only when one side has no or all-1 batch dims
      const bBatch = int(0, 1) === 0 ? batch : batch.map(() => 1);
      const ta = int(0, 1) === 1;
      const tb = int(0, 1) === 1;
      const a = rand([...batch, ...(ta ? [k, m] : [m, k])]);
      const b = rand([...bBatch, ...(tb ? [n, k] : [k, n])]);
      compareBackends(() => tf.matMul(t(a), t(b), ta, tb), 1e-5, 1e-5, `${a.shape} ${b.shape} ${ta} ${tb}`);
    }
  });
});
