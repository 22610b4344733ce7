import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { Conv2d, type Conv2dOptions } from '../../../core/nn/index.js';
import { tf } from '../../../core/tf.js';
import { expectClose, fixture, values } from './helpers.js';

/**
 * Direct definition of PyTorch's conv2d, written over NHWC input and a PyTorch-layout
 * weight [out, in/groups, kh, kw]: out[b,y,x,o] = bias[o] + Σ x[b, y·s−p+i, x·s−p+j, g·cin+c]·w[o,c,i,j].
 */
function naiveConv(
  x: number[],
  [n, h, w, cin]: number[],
  wt: number[],
  [cout, cinG, kh, kw]: number[],
  bias: number[] | null,
  [sh, sw]: number[],
  [ph, pw]: number[],
  groups: number,
): { data: number[]; shape: number[] } {
  const oh = Math.floor((h! + 2 * ph! - kh!) / sh!) + 1;
  const ow = Math.floor((w! + 2 * pw! - kw!) / sw!) + 1;
  const coutG = cout! / groups;
  const out: number[] = [];
  for (let b = 0; b < n!; b++)
    for (let y = 0; y < oh; y++)
      for (let xo = 0; xo < ow; xo++)
        for (let o = 0; o < cout!; o++) {
          const g = Math.floor(o / coutG);
          let acc = bias ? bias[o]! : 0;
          for (let c = 0; c < cinG!; c++)
            for (let i = 0; i < kh!; i++)
              for (let j = 0; j < kw!; j++) {
                const yi = y * sh! - ph! + i;
                const xj = xo * sw! - pw! + j;
                if (yi < 0 || yi >= h! || xj < 0 || xj >= w!) continue;
                const xv = x[((b * h! + yi) * w! + xj) * cin! + g * cinG! + c]!;
                acc += xv * wt[((o * cinG! + c) * kh! + i) * kw! + j]!;
              }
          out.push(acc);
        }
  return { data: out, shape: [n!, oh, ow, cout!] };
}

function check(cin: number, cout: number, k: number | [number, number], opts: Conv2dOptions, expectPad: [number, number], hw: [number, number] = [5, 6]): void {
  const conv = new Conv2d(cin, cout, k, opts);
  const xShape = [2, hw[0], hw[1], cin];
  const x = fixture(xShape, 3);
  const y = conv.forward(x);
  const stride = typeof opts.stride === 'number' ? [opts.stride, opts.stride] : (opts.stride ?? [1, 1]);
  const ref = naiveConv(values(x), xShape, values(conv.weight.variable), conv.weight.shape, conv.bias ? values(conv.bias.variable) : null, stride, expectPad, opts.groups ?? 1);
  expect(y.shape).toEqual(ref.shape);
  expectClose(y, ref.data, 1e-5);
  conv.dispose();
}

describe('Conv2d (NHWC activations, PyTorch weight layout)', () => {
  it('stores the weight as [out, in/groups, kh, kw] with PyTorch default init bounds', () => {
    const conv = new Conv2d(4, 6, [3, 2], { groups: 2 });
    expect(conv.weight.shape).toEqual([6, 2, 3, 2]);
    expect(conv.bias!.shape).toEqual([6]);
    const bound = 1 / Math.sqrt(2 * 3 * 2);
    expect(values(conv.weight.variable).every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(values(conv.bias!.variable).every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Object.keys(conv.stateDict())).toEqual(['weight', 'bias']);
  });

  it('matches the direct definition: padding 1, stride 1, bias', () => check(3, 4, 3, { padding: 1 }, [1, 1]));
  it('matches with stride 2, rectangular kernel and padding, no bias', () => check(2, 3, [3, 2], { stride: 2, padding: [1, 0], bias: false }, [1, 0]));
  it('matches with groups=2 (split/concat path)', () => check(4, 6, 3, { groups: 2, padding: 1, stride: [1, 2] }, [1, 1]));
  it('matches depthwise (groups = in, channel multiplier 2)', () => check(3, 6, 3, { groups: 3, padding: 1, stride: 2 }, [1, 1]));
  it('matches padding "same" (odd kernel) and "valid"', () => {
    check(2, 2, 3, { padding: 'same' }, [1, 1]);
    check(2, 2, 3, { padding: 'valid' }, [0, 0]);
  });

  it('rejects bad configurations with the option name', () => {
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(/`groups` must divide/);
    expect(() => new Conv2d(4, 4, 3, { padding: 'same', stride: 2 })).toThrow(MisconfigurationError);
    expect(() => new Conv2d(4, 4, 0)).toThrow(/`kernelSize`/);
    expect(() => new Conv2d(4, 4, 3, { padding: -1 })).toThrow(/`padding`/);
    const conv = new Conv2d(3, 4, 1);
    expect(() => conv.forward(tf.zeros([1, 3, 5, 5]))).toThrow(/NHWC/);
  });
});
