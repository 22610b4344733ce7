import { afterEach, describe, expect, it } from 'vitest';
import { SGD, CosineWarmupScheduler, ConstantLR, StepLR, LambdaLR, type LRScheduler } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { param } from './helpers.js';

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

/** Two groups with base lrs 0.1 and 0.01. */
function optimizer(): SGD {
  const a = param([1]);
  const b = param([1]);
  const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1 });
  live.push(a, b, opt);
  return opt;
}

/** The lr of group 0 at steps 0..n−1 (index = step). */
function trace(s: LRScheduler, n: number, group = 0): number[] {
  const out = [s.getLastLr()[group]];
  for (let i = 1; i < n; i++) {
    s.step();
    out.push(s.getLastLr()[group]);
  }
  return out;
}

function closeAll(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i], 12));
}

describe('CosineWarmupScheduler', () => {
  it("warms up as open_clip's cosine_lr (base·(s+1)/warmup, never 0), then follows the cosine to the minimum and stays there", () => {
    const opt = optimizer();
    const s = new CosineWarmupScheduler(opt, { warmupSteps: 10, totalSteps: 110 });
    // Construction sets the step-0 lr on the optimizer, as PyTorch does: base/warmup, not 0.
    closeAll(opt.paramGroups.map((g) => g.lr), [0.01, 0.001]);
    expect(s.lastEpoch).toBe(0);
    const lr = trace(s, 201);
    // step 0, mid-warmup, last warmup step, end of warmup, a quarter of the cosine, half-way, end, after end
    closeAll([lr[0], lr[5], lr[9], lr[10], lr[35], lr[60], lr[110], lr[200]], [0.01, 0.06, 0.1, 0.1, 0.05 * (1 + Math.SQRT1_2), 0.05, 0, 0]);
    expect(s.lastEpoch).toBe(200);
    expect(opt.paramGroups[1].lr).toBe(0);
  });

  it('scales every group from its own initial lr, with minLrRatio or minLr', () => {
    const opt = optimizer();
    const s = new CosineWarmupScheduler(opt, { warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 });
    for (let i = 0; i < 60; i++) s.step();
    // half-way: min + (base − min)/2
    closeAll(s.getLastLr(), [0.01 + 0.045, 0.001 + 0.0045]);
    expect(opt.paramGroups.map((g) => g.initialLr)).toEqual([0.1, 0.01]);
    for (let i = 0; i < 50; i++) s.step();
    closeAll(s.getLastLr(), [0.01, 0.001]);

    const opt2 = optimizer();
    const s2 = new CosineWarmupScheduler(opt2, { warmupSteps: 0, totalSteps: 4, minLr: 0.002 });
    closeAll(trace(s2, 6), [0.1, 0.002 + 0.049 * (1 + Math.SQRT1_2), 0.051, 0.002 + 0.049 * (1 - Math.SQRT1_2), 0.002, 0.002]);
  });

  it('rejects invalid or conflicting options', () => {
    const opt = optimizer();
    expect(() => new CosineWarmupScheduler(opt, { warmupSteps: -1, totalSteps: 10 })).toThrow('`warmupSteps` must be an integer ≥ 0, got -1');
    expect(() => new CosineWarmupScheduler(opt, { warmupSteps: 10, totalSteps: 10 })).toThrow(MisconfigurationError);
    expect(() => new CosineWarmupScheduler(opt, { warmupSteps: 1, totalSteps: 10, minLr: 0, minLrRatio: 0.1 })).toThrow('at most one');
  });

  it('round-trips its state into a fresh scheduler', () => {
    const opt = optimizer();
    const s = new CosineWarmupScheduler(opt, { warmupSteps: 3, totalSteps: 9 });
    for (let i = 0; i < 4; i++) s.step();
    const state = JSON.parse(JSON.stringify(s.stateDict()));
    const next = trace(s, 4);

    const opt2 = optimizer();
    const s2 = new CosineWarmupScheduler(opt2, { warmupSteps: 3, totalSteps: 9 });
    expect(opt2.paramGroups[0].lr).toBeCloseTo(0.1 / 3, 12); // the fresh scheduler set its step-0 lr
    s2.loadStateDict(state);
    expect(s2.lastEpoch).toBe(4);
    expect(opt2.paramGroups.map((g) => g.lr)).toEqual(state.lastLr);
    expect(trace(s2, 4)).toEqual(next);
    expect(() => s2.loadStateDict({ lastEpoch: 1, baseLrs: [0.1], lastLr: [0.1] })).toThrow(MisconfigurationError);
  });
});

describe('ConstantLR, StepLR, LambdaLR', () => {
  it('ConstantLR keeps the lr, or applies a factor for totalIters steps', () => {
    closeAll(trace(new ConstantLR(optimizer()), 3), [0.1, 0.1, 0.1]);
    closeAll(trace(new ConstantLR(optimizer(), { factor: 0.5, totalIters: 2 }), 4), [0.05, 0.05, 0.1, 0.1]);
  });

  it('StepLR multiplies by gamma every stepSize steps', () => {
    closeAll(trace(new StepLR(optimizer(), { stepSize: 2, gamma: 0.5 }), 5), [0.1, 0.1, 0.05, 0.05, 0.025]);
    expect(() => new StepLR(optimizer(), { stepSize: 0 })).toThrow('`stepSize` must be an integer ≥ 1, got 0');
  });

  it('LambdaLR applies one function or one per group', () => {
    closeAll(trace(new LambdaLR(optimizer(), (s) => 1 / (s + 1)), 3), [0.1, 0.05, 0.1 / 3]);
    const s = new LambdaLR(optimizer(), [(k) => k, () => 2]);
    s.step();
    closeAll(s.getLastLr(), [0.1, 0.02]);
    expect(() => new LambdaLR(optimizer(), [() => 1])).toThrow(MisconfigurationError);
  });
});
