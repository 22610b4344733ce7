import { describe, expect, it } from 'vitest';
import { AdaptiveAvgPool2d, AvgPool2d } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, fixture, values } from './helpers.js';

/** Single-channel image 0..h·w-1 in NHWC. */
const ramp = (h: number, w: number): tf.Tensor => tf.reshape(tf.range(0, h * w), [1, h, w, 1]);

/** Mean of img over rows [r0, r1) and columns [c0, c1), dividing by `div` (default: the area). */
function boxMean(img: number[], w: number, r0: number, r1: number, c0: number, c1: number, div?: number): number {
  let s = 0;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) s += img[r * w + c]!;
  return s / (div ?? (r1 - r0) * (c1 - c0));
}

describe('AvgPool2d', () => {
  it('averages non-overlapping windows (stride defaults to the kernel)', () => {
    expectClose(new AvgPool2d(2).forward(ramp(4, 4)), [2.5, 4.5, 10.5, 12.5]);
  });

  it('counts padding in the divisor by default, as PyTorch', () => {
    const img = values(ramp(4, 4));
    // kernel 3, stride 2, padding 1 on 4×4: windows start at -1 and 1 on each axis.
    const expected: number[] = [];
    for (const r of [-1, 1]) for (const c of [-1, 1]) expected.push(boxMean(img, 4, Math.max(r, 0), Math.min(r + 3, 4), Math.max(c, 0), Math.min(c + 3, 4), 9));
    expectClose(new AvgPool2d(3, { stride: 2, padding: 1 }).forward(ramp(4, 4)), expected);
    const excl: number[] = [];
    for (const r of [-1, 1]) for (const c of [-1, 1]) excl.push(boxMean(img, 4, Math.max(r, 0), Math.min(r + 3, 4), Math.max(c, 0), Math.min(c + 3, 4)));
    expectClose(new AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }).forward(ramp(4, 4)), excl);
  });
});

describe('AdaptiveAvgPool2d', () => {
  it('uses PyTorch bins floor(i·H/o)..ceil((i+1)·H/o), overlapping when H is not divisible', () => {
    const img = values(ramp(5, 4));
    // Rows 5 → 2 bins: [0, 3) and [2, 5). Columns 4 → 3 bins: [0, 2), [1, 3), [2, 4).
    const expected: number[] = [];
    for (const [r0, r1] of [[0, 3], [2, 5]]) for (const [c0, c1] of [[0, 2], [1, 3], [2, 4]]) expected.push(boxMean(img, 4, r0!, r1!, c0!, c1!));
    const y = new AdaptiveAvgPool2d([2, 3]).forward(ramp(5, 4));
    expect(y.shape).toEqual([1, 2, 3, 1]);
    expectClose(y, expected);
  });

  it('divisible sizes and 1×1 give block means and the global mean', () => {
    expectClose(new AdaptiveAvgPool2d(2).forward(ramp(4, 4)), [2.5, 4.5, 10.5, 12.5]);
    const x = fixture([2, 3, 5, 4]);
    const g = new AdaptiveAvgPool2d(1).forward(x);
    expect(g.shape).toEqual([2, 1, 1, 4]);
    expectClose(g, tf.mean(x, [1, 2]));
  });
});
