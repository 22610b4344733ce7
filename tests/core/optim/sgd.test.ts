import { afterEach, describe, expect, it } from 'vitest';
import { SGD } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';
import type { Parameter } from '../../../core/nn/module.js';
import { expectClose, param, setGrad, values } from './helpers.js';

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

function run(p: Parameter, opt: SGD, grads: number[][]): number[][] {
  return grads.map((g) => {
    setGrad(p, g);
    opt.step();
    opt.zeroGrad();
    return values(p);
  });
}

describe('SGD', () => {
  it('plain step with weight decay: p ← p − lr·(g + wd·p)', () => {
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1, weightDecay: 0.5 });
    live.push(p, opt);
    run(p, opt, [[1, 1]]);
    // 1 − 0.1·(1 + 0.5) = 0.85;  −2 − 0.1·(1 − 1) = −2
    expectClose(values(p), [0.85, -2]);
    expect(opt.getState(p)?.tensors.size).toBe(0);
  });

  it('momentum: the buffer starts at the first gradient', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    live.push(p, opt);
    // buf 1 → 1.9 → 2.71;  p 0.9 → 0.71 → 0.439
    const traj = run(p, opt, [[1], [1], [1]]);
    expectClose(traj.flat(), [0.9, 0.71, 0.439]);
  });

  it('nesterov: d = g + μ·buf', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true });
    live.push(p, opt);
    // step 1: buf 1, d 1.9, p 0.81;  step 2: buf 1.9, d 2.71, p 0.539
    expectClose(run(p, opt, [[1], [1]]).flat(), [0.81, 0.539]);
  });

  it('dampening scales only later gradients entering the buffer', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5 });
    live.push(p, opt);
    // buf 1 (undamped) → 0.9 + 0.5 = 1.4;  p 0.9 → 0.76
    expectClose(run(p, opt, [[1], [1]]).flat(), [0.9, 0.76]);
  });

  it('momentum with weight decay over varying gradients', () => {
    const p = param([2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.5, weightDecay: 0.1 });
    live.push(p, opt);
    // d1 = 1 + 0.2 = 1.2, buf 1.2, p = 1.88;  d2 = −1 + 0.188 = −0.812, buf = 0.6 − 0.812 = −0.212, p = 1.9012
    expectClose(run(p, opt, [[1], [-1]]).flat(), [1.88, 1.9012]);
  });

  it('nesterov without momentum is a configuration error', () => {
    const p = param([1]);
    live.push(p);
    expect(() => new SGD([p], { nesterov: true })).toThrow(MisconfigurationError);
    expect(() => new SGD([p], { nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow('`nesterov` requires');
  });
});
