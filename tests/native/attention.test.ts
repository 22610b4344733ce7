/**
 * splitHeads (core/native/fused.ts): the attention heads of a packed q/k/v projection, one
 * native kernel each way on lightclip-cpu, against the transpose-and-slice composition on cpu.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { nativeKernelNames } from '../../core/native/backend.js';
import { splitHeads, splitHeadsComposed } from '../../core/native/fused.js';
import { FusedKernelName } from '../../core/native/kernels_fused.js';
import { NATIVE, expectClose, rand, runOn, setupNative, t } from './helpers.js';

beforeAll(setupNative);

/** q, k, v and d(loss)/d(qkv) for a loss weighting each head differently (`use` picks the parts in the loss). */
function headsAndGrad(split: typeof splitHeads, qkv: ReturnType<typeof rand>, heads: number, use: number[]): Tensor[] {
  const x = t(qkv);
  const parts = split(x, heads);
  const loss = (xi: Tensor): Tensor => {
    const ps = split(xi, heads);
    return tf.addN(use.map((i) => ps[i].mul(tf.range(0, ps[i].size, 1, 'float32').reshape(ps[i].shape).cos().mul(i + 1)).sum()));
  };
  return [...parts, tf.grad(loss)(x)];
}

describe('splitHeads', () => {
  it('is registered with its gradient kernel', () => {
    expect(nativeKernelNames()).toContain(FusedKernelName.SplitHeads);
    expect(nativeKernelNames()).toContain(FusedKernelName.MergeHeads);
  });

  // [B, L, heads, headDim]: ViT-like, text-like, size-1 dimensions, and an empty batch
  const cases: [number, number, number, number][] = [[2, 5, 3, 4], [1, 7, 2, 8], [3, 1, 1, 1], [1, 1, 4, 2], [0, 3, 2, 2], [2, 4, 12, 2]];
  for (const [b, l, h, d] of cases) {
    it(`values and gradient match the composition for B=${b} L=${l} H=${h} d=${d}`, () => {
      const qkv = rand([b, l, 3 * h * d]);
      for (const use of [[0, 1, 2], [0, 2], [1]]) {
        const got = runOn(NATIVE, () => headsAndGrad(splitHeads, qkv, h, use));
        const ref = runOn('cpu', () => headsAndGrad(splitHeadsComposed, qkv, h, use));
        expect(got.length).toBe(4);
        ref.forEach((r, i) => {
          expect(got[i].shape).toEqual(r.shape);
          expectClose(got[i].values, r.values, 1e-6, 1e-6, `output ${i} use=${use}`);
        });
      }
    });
  }

  it('falls back to the composition off the native backend', () => {
    const qkv = rand([2, 3, 12]);
    const got = runOn('cpu', () => splitHeads(t(qkv), 2));
    const ref = runOn('cpu', () => splitHeadsComposed(t(qkv), 2));
    got.forEach((g, i) => expectClose(g.values, ref[i].values, 0, 0, `part ${i}`));
  });
});
