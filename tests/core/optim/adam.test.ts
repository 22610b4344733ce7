import { afterEach, describe, expect, it } from 'vitest';
import { Adam, AdamW } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';
import type { Parameter } from '../../../core/nn/module.js';
import { expectClose, param, setGrad, values } from './helpers.js';

interface RefOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
  decoupled: boolean;
  amsgrad?: boolean;
}

/** torch.optim.Adam / AdamW in float64 JS numbers, element by element. */
function adamReference(p0: number[], grads: number[][], o: RefOptions): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const vmax = p.map(() => 0);
  grads.forEach((g0, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      let g = g0[i];
      if (o.decoupled) p[i] *= 1 - o.lr * o.wd;
      else g += o.wd * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      vmax[i] = Math.max(vmax[i], v[i]);
      const second = o.amsgrad ? vmax[i] : v[i];
      const denom = Math.sqrt(second) / Math.sqrt(1 - o.beta2 ** t) + o.eps;
      p[i] -= (o.lr / (1 - o.beta1 ** t)) * (m[i] / denom);
    }
  });
  return p;
}

const GRADS = [
  [0.5, -1.0, 2.0],
  [0.1, -0.3, -2.5],
  [1.5, 0.2, 0.05],
];

function run(p: Parameter, opt: Adam, grads: number[][]): void {
  for (const g of grads) {
    setGrad(p, g);
    opt.step();
    opt.zeroGrad();
  }
}

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

describe('AdamW', () => {
  it('first step: decay then a step of size lr along sign(g)', () => {
    // m̂ = g, v̂ = g², so the Adam step is lr·g/(|g| + eps) ≈ lr·sign(g).
    const p = param([1, -2]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
    live.push(p, opt);
    run(p, opt, [[0.5, -4]]);
    // 1·(1 − 0.01) − 0.1 = 0.89;  −2·0.99 + 0.1 = −1.88
    expectClose(values(p), [0.89, -1.88]);
  });

  it('matches torch.optim.AdamW over three steps (CLIP betas/eps)', () => {
    const p0 = [0.3, -0.7, 1.2];
    const p = param(p0);
    const opt = new AdamW([p], { lr: 0.01, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2 });
    live.push(p, opt);
    run(p, opt, GRADS);
    expectClose(values(p), adamReference(p0, GRADS, { lr: 0.01, beta1: 0.9, beta2: 0.98, eps: 1e-6, wd: 0.2, decoupled: true }));
    expect(opt.getState(p)?.step).toBe(3);
  });

  it('amsgrad uses the running maximum of the second moment', () => {
    const p0 = [0.3, -0.7, 1.2];
    const p = param(p0);
    // A fast-forgetting beta2 makes v fall when the gradient shrinks, where amsgrad differs.
    const opt = new AdamW([p], { lr: 0.05, betas: [0.9, 0.5], weightDecay: 0.1, amsgrad: true });
    live.push(p, opt);
    run(p, opt, GRADS);
    const ref = { lr: 0.05, beta1: 0.9, beta2: 0.5, eps: 1e-8, wd: 0.1, decoupled: true };
    expectClose(values(p), adamReference(p0, GRADS, { ...ref, amsgrad: true }));
    // The gradient on element 2 shrinks at step 3, so amsgrad must differ from plain Adam there.
    expect(Math.abs(values(p)[2] - adamReference(p0, GRADS, ref)[2])).toBeGreaterThan(1e-4);
  });

  it('defaults to PyTorch weight decay 1e-2', () => {
    const p = param([1]);
    const opt = new AdamW([p]);
    live.push(p, opt);
    expect(opt.paramGroups[0]).toMatchObject({ lr: 1e-3, weightDecay: 1e-2, eps: 1e-8, betas: [0.9, 0.999], amsgrad: false });
  });
});

describe('Adam', () => {
  it('adds L2 weight decay to the gradient (torch.optim.Adam)', () => {
    const p0 = [0.3, -0.7, 1.2];
    const p = param(p0);
    const opt = new Adam([p], { lr: 0.01, weightDecay: 0.5 });
    live.push(p, opt);
    run(p, opt, GRADS);
    const ref = adamReference(p0, GRADS, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.5, decoupled: false });
    expectClose(values(p), ref);
    const decoupled = adamReference(p0, GRADS, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.5, decoupled: true });
    expect(Math.abs(ref[0] - decoupled[0])).toBeGreaterThan(1e-4);
  });

  it('rejects invalid hyperparameters naming the option', () => {
    const p = param([1]);
    live.push(p);
    expect(() => new Adam([p], { lr: -1 })).toThrow(MisconfigurationError);
    expect(() => new Adam([p], { lr: -1 })).toThrow('`lr` must be a non-negative number, got -1');
    expect(() => new Adam([p], { betas: [0.9, 1] })).toThrow('`betas[1]` must be a number in [0, 1), got 1');
    expect(() => new Adam([{ params: [p], eps: -1 }])).toThrow('`eps`');
    expect(() => new Adam([])).toThrow(MisconfigurationError);
  });
});
