import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import { nativeKernelNames } from '../../core/native/backend.js';
import { compareBackends, rand, setupNative, t } from './helpers.js';

beforeAll(setupNative);

/** All permutations of [0..n). */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  }
  return out;
}

describe('data-movement kernels match tfjs cpu', () => {
  it('registers them natively', () => {
    for (const k of ['Transpose', 'Slice', 'SplitV', 'Concat', 'PadV2', 'GatherV2', 'UnsortedSegmentSum', 'Tile', 'BroadcastTo']) {
      expect(nativeKernelNames()).toContain(k);
    }
  });

  it('Transpose: every permutation of ranks 1-4, size-0/1 dims, a rank-6 case and big tiles', () => {
    for (const shape of [[5], [3, 4], [2, 3, 4], [2, 1, 3, 5], [3, 0, 2], [1, 1, 1]]) {
      const x = rand(shape);
      for (const perm of permutations(shape.length)) {
        compareBackends(() => tf.transpose(t(x), perm), 0, 0, `${shape} ${perm}`);
      }
    }
    const x6 = rand([2, 3, 1, 4, 2, 3]);
    compareBackends(() => tf.transpose(t(x6), [5, 3, 0, 4, 2, 1]), 0, 0, 'rank 6');
    const big = rand([70, 130]);
    compareBackends(() => tf.transpose(t(big)), 0, 0, 'tiled 2-D');
    const heads = rand([2, 50, 12, 64]);
    compareBackends(() => tf.transpose(t(heads), [0, 2, 1, 3]), 0, 0, 'attention heads');
  });

  it('Slice: offsets on every axis, size-0 and full slices', () => {
    const x = rand([4, 5, 6]);
    const cases: [number[], number[]][] = [[[0, 0, 0], [4, 5, 6]], [[1, 2, 3], [2, 2, 2]], [[3, 0, 0], [1, 5, 6]],
      [[0, 4, 0], [4, 1, 6]], [[1, 1, 5], [3, 4, 1]], [[2, 0, 0], [0, 5, 6]], [[0, 0, 2], [-1, -1, -1]]];
    for (const [b, s] of cases) compareBackends(() => tf.slice(t(x), b, s), 0, 0, `${b} ${s}`);
    const qkv = rand([2, 7, 3 * 16]);
    compareBackends(() => tf.split(t(qkv), 3, 2), 0, 0, 'q/k/v split (SplitV)');
    compareBackends(() => tf.split(t(qkv), [1, 0, 6], 1), 0, 0, 'uneven split with an empty part');
    compareBackends(() => tf.split(t(qkv), 2, 0), 0, 0, 'split on axis 0');
  });

  it('Concat on every axis, with empty inputs and many inputs', () => {
    const a = rand([2, 3, 4]);
    for (let axis = -3; axis < 3; axis++) {
      const shape = [2, 3, 4];
      shape[(axis + 3) % 3] = 5;
      const b = rand(shape);
      compareBackends(() => tf.concat([t(a), t(b), t(a)], axis), 0, 0, `axis ${axis}`);
    }
    const empty = rand([2, 0, 4]);
    compareBackends(() => tf.concat([t(a), t(empty)], 1), 0, 0, 'empty');
    const cls = rand([1, 1, 8]);
    const patches = rand([1, 49, 8]);
    compareBackends(() => tf.concat([t(cls), t(patches)], 1), 0, 0, 'class token');
  });

  it('PadV2 with constants and zero paddings', () => {
    const x = rand([2, 3, 4]);
    compareBackends(() => tf.pad(t(x), [[1, 0], [0, 2], [3, 1]], 0.5), 0, 0, 'pad');
    compareBackends(() => tf.pad(t(x), [[0, 0], [0, 0], [0, 0]]), 0, 0, 'no pad');
    compareBackends(() => tf.pad(t(rand([0, 2])), [[1, 1], [0, 1]], 2), 0, 0, 'empty');
  });

  it('Tile and BroadcastTo', () => {
    const x = rand([2, 1, 3]);
    compareBackends(() => tf.tile(t(x), [2, 3, 1]), 0, 0, 'tile');
    compareBackends(() => tf.tile(t(x), [1, 1, 1]), 0, 0, 'tile 1');
    compareBackends(() => tf.broadcastTo(t(x), [4, 2, 5, 3]), 0, 0, 'broadcastTo');
  });

  it('GatherV2 on every axis and its gradient (UnsortedSegmentSum)', () => {
    const x = rand([5, 4, 3]);
    const idx = [4, 0, 0, 2, 3];
    for (let axis = 0; axis < 3; axis++) {
      const i = tf.tensor1d(idx.map((v) => v % x.shape[axis]), 'int32');
      compareBackends(() => tf.gather(t(x), i, axis), 0, 0, `gather axis ${axis}`);
      compareBackends(() => tf.grad((xi: tf.Tensor) => tf.gather(xi, i, axis).square().sum())(t(x)), 1e-6, 1e-6, `grad axis ${axis}`);
      i.dispose();
    }
    const i2 = tf.tensor2d([[1, 2], [0, 1]], [2, 2], 'int32');
    compareBackends(() => tf.gather(t(x), i2, 0), 0, 0, 'matrix indices');
    i2.dispose();
  });

  it('GatherV2 rejects out-of-range indices like tfjs', () => {
    const x = rand([3, 2]);
    tf.setBackend('lightclip-cpu');
    try {
      const bad = tf.tensor1d([0, 3], 'int32');
      expect(() => tf.gather(t(x), bad)).toThrow(/not in \[0, 2\]/);
      bad.dispose();
    } finally {
      tf.setBackend('cpu');
    }
  });

  it('UnsortedSegmentSum with repeated, dropped and multi-dimensional segments', () => {
    const x = rand([6, 4]);
    const ids = tf.tensor1d([0, 2, 2, 1, 0, 3], 'int32');
    compareBackends(() => tf.unsortedSegmentSum(t(x), ids, 5), 1e-6, 1e-6, 'segments');
    ids.dispose();
  });
});
