import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { Parameter } from '../../../core/nn/module.js';
import { SGD } from '../../../core/optim/sgd.js';
import { OpenClipScheduler, openClipOptim, withGradClipNorm } from '../../../core/optim/openClipSchedule.js';

const opt = () => new SGD([new Parameter(tf.zeros([2]))], { lr: 0.1 });
function lrs(s: OpenClipScheduler, n: number): number[] {
  const out = [s.getLastLr()[0]!];
  for (let i = 1; i < n; i++) {
    s.step();
    out.push(s.getLastLr()[0]!);
  }
  return out;
}

describe("open_clip's --lr_scheduler", () => {
  it('cosine: warmup (s+1)/w, then half-cosine to 0 (hand values)', () => {
    const v = lrs(new OpenClipScheduler(opt(), { kind: 'cosine', warmupSteps: 2, totalSteps: 6 }), 7);
    // steps 0,1: 0.05, 0.1; then e = 0..4 of es = 4: 0.1·(1+cos(πe/4))/2 = 0.1, 0.08536, 0.05, 0.01464, 0
    [0.05, 0.1, 0.1, 0.0853553, 0.05, 0.0146447, 0].forEach((x, i) => expect(v[i]).toBeCloseTo(x, 6));
  });

  it('const and const-cooldown (linear and squared cooldown to an end lr)', () => {
    expect(lrs(new OpenClipScheduler(opt(), { kind: 'const', warmupSteps: 1, totalSteps: 5 }), 4)).toEqual([0.1, 0.1, 0.1, 0.1]);
    const lin = lrs(new OpenClipScheduler(opt(), { kind: 'const-cooldown', warmupSteps: 1, totalSteps: 8, cooldownSteps: 4, cooldownEnd: 0.02 }), 9);
    // cooldown starts at step 4: 0.02 + 0.08·(1 − e/4) for e = 0..4
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.08, 0.06, 0.04, 0.02].forEach((x, i) => expect(lin[i]).toBeCloseTo(x, 6));
    const sq = lrs(new OpenClipScheduler(opt(), { kind: 'const-cooldown', warmupSteps: 1, totalSteps: 4, cooldownSteps: 2, cooldownPower: 2 }), 5);
    [0.1, 0.1, 0.1, 0.025, 0].forEach((x, i) => expect(sq[i]).toBeCloseTo(x, 6));
    expect(() => new OpenClipScheduler(opt(), { kind: 'const-cooldown', warmupSteps: 1, totalSteps: 4 })).toThrow(/--epochs_cooldown/);
    expect(() => new OpenClipScheduler(opt(), { kind: 'linear' as never, warmupSteps: 1, totalSteps: 4 })).toThrow(/--lr_scheduler/);
    expect(() => openClipOptim(opt(), { lrScheduler: 'const-cooldown', epochsCooldown: 1 }, { warmup: 1, total: 10 })).toThrow(/--max_epochs/);
    expect(openClipOptim(opt(), {}, { warmup: 1, total: 10 })).toBeNull();
  });
});

describe("open_clip's --grad_clip_norm", () => {
  it('rescales the gradients to the global norm before the step, and leaves small ones alone', () => {
    const p = new Parameter(tf.zeros([2]));
    const o = withGradClipNorm(new SGD([p], { lr: 1 }), 1);
    p.grad = tf.tensor1d([3, 4]); // norm 5 → scaled by 1/5
    o.step();
    const w = p.variable.dataSync();
    expect(w[0]).toBeCloseTo(-0.6, 5);
    expect(w[1]).toBeCloseTo(-0.8, 5);
    p.zeroGrad();
    p.grad = tf.tensor1d([0.3, 0.4]);
    o.step();
    expect(p.variable.dataSync()[0]).toBeCloseTo(-0.9, 5);
    expect(() => withGradClipNorm(new SGD([p], { lr: 1 }), 0)).toThrow(/--grad_clip_norm/);
  });
});
