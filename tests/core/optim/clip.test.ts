import { afterEach, describe, expect, it } from 'vitest';
import { clipGradNorm, clipGradValue } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { expectClose, gradValues, param, setGrad } from './helpers.js';

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

/** Grads [3, 4] and [12]: global 2-norm 13, 1-norm 19, ∞-norm 12. */
function setup(): ReturnType<typeof param>[] {
  const a = param([0, 0]);
  const b = param([0]);
  const none = param([5]);
  setGrad(a, [3, 4]);
  setGrad(b, [12]);
  live.push(a, b, none);
  return [a, b, none];
}

describe('clipGradNorm', () => {
  it('scales to maxNorm over all gradients together and returns the pre-clip norm', () => {
    const [a, b, none] = setup();
    expect(clipGradNorm([a, b, none], 6.5)).toBeCloseTo(13, 5);
    const coef = 6.5 / (13 + 1e-6);
    expectClose(gradValues(a), [3 * coef, 4 * coef]);
    expectClose(gradValues(b), [12 * coef]);
    const after = Math.hypot(...gradValues(a), ...gradValues(b));
    expect(after).toBeLessThanOrEqual(6.5);
    // Direction preserved: same ratios between all elements.
    expectClose([gradValues(a)[1] / gradValues(a)[0], gradValues(b)[0] / gradValues(a)[0]], [4 / 3, 4]);
    expect(none.grad).toBeNull();
  });

  it('leaves gradients alone when the norm is within bounds', () => {
    const [a, b] = setup();
    expect(clipGradNorm([a, b], 20)).toBeCloseTo(13, 5);
    expect(gradValues(a)).toEqual([3, 4]);
    expect(gradValues(b)).toEqual([12]);
  });

  it('supports the 1-norm, the ∞-norm and other p', () => {
    const [a, b] = setup();
    expect(clipGradNorm([a, b], 100, 1)).toBeCloseTo(19, 5);
    expect(clipGradNorm([a, b], 100, Infinity)).toBeCloseTo(12, 5);
    expect(clipGradNorm([a, b], 100, 3)).toBeCloseTo(Math.cbrt(27 + 64 + 1728), 4);
    clipGradNorm([a, b], 6, Infinity);
    expectClose(gradValues(b), [12 * (6 / (12 + 1e-6))]);
  });

  it('returns 0 without gradients and validates its arguments', () => {
    const p = param([1]);
    live.push(p);
    expect(clipGradNorm([p], 1)).toBe(0);
    expect(() => clipGradNorm([p], 0)).toThrow(MisconfigurationError);
    expect(() => clipGradNorm([p], 1, -2)).toThrow('`normType`');
  });
});

describe('clipGradValue', () => {
  it('clamps every element to [-value, value]', () => {
    const p = param([0, 0, 0]);
    live.push(p);
    setGrad(p, [-3, 0.5, 2]);
    clipGradValue([p], 1);
    expect(gradValues(p)).toEqual([-1, 0.5, 1]);
    expect(() => clipGradValue([p], -1)).toThrow('`value` must be a positive number, got -1');
  });
});
