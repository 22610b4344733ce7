import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { resizePosEmbed1d, resizePosEmbed2d } from '../../../modules/clip/posEmbed.js';

// PyTorch align_corners=False: src = (dst + 0.5)·(in/out) − 0.5, clamped at 0; linear between neighbours.
function linear1d(v: number[], m: number): number[] {
  const n = v.length;
  return Array.from({ length: m }, (_, j) => {
    const src = Math.max(0, (j + 0.5) * (n / m) - 0.5);
    const i0 = Math.min(Math.floor(src), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const t = src - i0;
    return v[i0]! * (1 - t) + v[i1]! * t;
  });
}

describe('positional-embedding resampling', () => {
  it('1-D (CoreNet): hand values for 2 → 4 and 4 → 3', () => {
    const out = resizePosEmbed1d(tf.tensor2d([[0, 10], [4, 20]]), 4).arraySync() as number[][];
    expect(out.map((r) => r[0])).toEqual([0, 1, 3, 4].map((x) => expect.closeTo(x, 5)));
    expect(out.map((r) => r[1])).toEqual([10, 12.5, 17.5, 20].map((x) => expect.closeTo(x, 5)));
    const v = [1, 2, 4, 8];
    const down = resizePosEmbed1d(tf.tensor2d(v.map((x) => [x])), 3).arraySync() as number[][];
    expect(down.map((r) => r[0])).toEqual(linear1d(v, 3).map((x) => expect.closeTo(x, 5)));
  });

  it('2-D (OpenAI layout): class row kept, grid resized bilinearly, same size is identity', () => {
    // grid 2×2 of scalar embeddings [[1, 2], [3, 4]] → 4×4
    const pos = tf.tensor2d([[9], [1], [2], [3], [4]]);
    const out = resizePosEmbed2d(pos, 4).arraySync() as number[][];
    expect(out).toHaveLength(17);
    expect(out[0]![0]).toBe(9);
    const rows = linear1d([1, 3], 4); // column 0 down the rows
    const first = linear1d([1, 2], 4); // row 0 across
    expect(out[1]![0]).toBeCloseTo(first[0]!, 5);
    expect(out[2]![0]).toBeCloseTo(first[1]!, 5);
    expect(out[1 + 4 * 2]![0]).toBeCloseTo(rows[2]!, 5);
    // separable: (r, c) = bilinear
    const full = rows.map((_, r) => linear1d([linear1d([1, 3], 4)[r]!, linear1d([2, 4], 4)[r]!], 4));
    expect(out.slice(1).map((x) => x[0])).toEqual(full.flat().map((x) => expect.closeTo(x, 5)));
    expect(resizePosEmbed2d(pos, 2).arraySync()).toEqual(pos.arraySync());
    expect(() => resizePosEmbed2d(tf.zeros([4, 2]), 3)).toThrow(/square grid/);
  });

  it('is differentiable', () => {
    const g = tf.grad((p: tf.Tensor) => tf.sum(resizePosEmbed1d(p, 5)))(tf.ones([3, 2]));
    expect(g.shape).toEqual([3, 2]);
    expect(g.sum().dataSync()[0]).toBeCloseTo(10, 4); // each output row's weights sum to 1 → 5 rows × 2 columns
  });
});
