import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { AdamW, CosineWarmupScheduler, SGD, clipGradNorm, type OptimizerStateDict } from '../../../core/optim/index.js';
import { MisconfigurationError } from '../../../core/errors.js';
import type { Parameter } from '../../../core/nn/module.js';
import { expectClose, param, setGrad, values } from './helpers.js';

const live: Array<{ dispose(): void }> = [];
afterEach(() => live.splice(0).forEach((x) => x.dispose()));

describe('parameter groups', () => {
  it('per-group lr and weight decay override the defaults', () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new SGD([{ params: [a], lr: 0.5 }, { params: [b], weightDecay: 0 }], { lr: 0.1, weightDecay: 0.2 });
    live.push(a, b, opt);
    expect(opt.paramGroups.map((g) => [g.lr, g.weightDecay])).toEqual([[0.5, 0.2], [0.1, 0]]);
    setGrad(a, [1]);
    setGrad(b, [1]);
    opt.step();
    // a: 1 − 0.5·(1 + 0.2) = 0.4;  b: 1 − 0.1·1 = 0.9
    expectClose(values(a), [0.4]);
    expectClose(values(b), [0.9]);
  });

  it('AdamW decays each group with its own weight decay', () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new AdamW([{ params: [a] }, { params: [b], weightDecay: 0 }], { lr: 0.1, weightDecay: 0.5 });
    live.push(a, b, opt);
    setGrad(a, [1]);
    setGrad(b, [1]);
    opt.step();
    // a: 1·(1 − 0.05) − 0.1 = 0.85;  b: 1 − 0.1 = 0.9
    expectClose(values(a), [0.85]);
    expectClose(values(b), [0.9]);
  });

  it('leaves frozen parameters and parameters without a gradient untouched', () => {
    const frozen = param([1, 2]);
    frozen.requiresGrad = false;
    const unused = param([3]);
    const used = param([4]);
    const opt = new AdamW([frozen, unused, used], { lr: 0.1 });
    live.push(frozen, unused, used, opt);
    setGrad(frozen, [1, 1]);
    setGrad(used, [1]);
    opt.step();
    expect(values(frozen)).toEqual([1, 2]);
    expect(values(unused)).toEqual([3]);
    expect(values(used)[0]).toBeLessThan(4);
    expect(opt.getState(frozen)).toBeUndefined();
    expect(opt.getState(unused)).toBeUndefined();
    expect(Object.keys(opt.stateDict().json.state)).toEqual(['2']);
  });

  it('rejects a parameter listed in two groups', () => {
    const a = param([1]);
    live.push(a);
    expect(() => new SGD([{ params: [a] }, { params: [a] }])).toThrow(MisconfigurationError);
  });

  it('zeroGrad clears every gradient', () => {
    const a = param([1]);
    const opt = new SGD([a]);
    live.push(a, opt);
    setGrad(a, [1]);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
  });
});

/** The gradient of parameter i at step k: deterministic, varied, both signs. */
function gradFor(p: Parameter, i: number, k: number): number[] {
  return Array.from({ length: p.size }, (_, j) => Math.sin(1.3 * k + 0.7 * j + i));
}

function trainSteps(params: Parameter[], opt: AdamW, sched: CosineWarmupScheduler, from: number, n: number): number[] {
  const lrs: number[] = [];
  for (let k = from; k < from + n; k++) {
    params.forEach((p, i) => setGrad(p, gradFor(p, i, k)));
    opt.step();
    opt.zeroGrad();
    sched.step();
    lrs.push(...sched.getLastLr());
  }
  return lrs;
}

function build(inits: Array<[number[], number[]]>): { params: Parameter[]; opt: AdamW; sched: CosineWarmupScheduler } {
  const params = inits.map(([v, shape]) => param(v, shape));
  const opt = new AdamW(
    [{ params: [params[0]], weightDecay: 0.2 }, { params: [params[1]], weightDecay: 0, lr: 0.02 }],
    { lr: 0.05, betas: [0.9, 0.98], eps: 1e-6, amsgrad: true },
  );
  const sched = new CosineWarmupScheduler(opt, { warmupSteps: 2, totalSteps: 8, minLrRatio: 0.1 });
  live.push(...params, opt);
  return { params, opt, sched };
}

describe('state dict', () => {
  it('resuming from a saved state gives bit-identical updates', () => {
    const init: Array<[number[], number[]]> = [[[0.1, -0.2, 0.3, 0.4], [2, 2]], [[0.5, -0.5], [2]]];
    const a = build(init);
    trainSteps(a.params, a.opt, a.sched, 0, 3);
    const saved: OptimizerStateDict = a.opt.stateDict();
    const schedState = JSON.parse(JSON.stringify(a.sched.stateDict()));
    const optJson = JSON.parse(JSON.stringify(saved.json));
    const weights = a.params.map((p): [number[], number[]] => [values(p), p.shape]);
    expect(Object.keys(saved.tensors).sort()).toEqual(
      ['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.0.max_exp_avg_sq', 'state.1.exp_avg', 'state.1.exp_avg_sq', 'state.1.max_exp_avg_sq'],
    );
    expect(optJson.state).toEqual({ 0: { step: 3 }, 1: { step: 3 } });
    expect(optJson.paramGroups[1]).toMatchObject({ initialLr: 0.02, weightDecay: 0, params: [1] });
    const lrsA = trainSteps(a.params, a.opt, a.sched, 3, 3);
    const after = a.params.map(values);

    const b = build(weights);
    b.opt.loadStateDict({ tensors: saved.tensors, json: optJson });
    b.sched.loadStateDict(schedState);
    Object.values(saved.tensors).forEach((t) => t.dispose());
    expect(b.sched.lastEpoch).toBe(3);
    const lrsB = trainSteps(b.params, b.opt, b.sched, 3, 3);
    expect(lrsB).toEqual(lrsA);
    expect(b.params.map(values)).toEqual(after);
  });

  it('a saved state is a snapshot: later steps do not change it', () => {
    const { params, opt, sched } = build([[[1, 2, 3, 4], [2, 2]], [[1, 2], [2]]]);
    trainSteps(params, opt, sched, 0, 1);
    const sd = opt.stateDict();
    const before = Array.from(sd.tensors['state.0.exp_avg'].dataSync());
    trainSteps(params, opt, sched, 1, 1);
    expect(Array.from(sd.tensors['state.0.exp_avg'].dataSync())).toEqual(before);
    Object.values(sd.tensors).forEach((t) => t.dispose());
  });

  it('rejects a state with another parameter count or shape', () => {
    const a = build([[[1, 2, 3, 4], [2, 2]], [[1, 2], [2]]]);
    trainSteps(a.params, a.opt, a.sched, 0, 1);
    const sd = a.opt.stateDict();
    const wrongShape = build([[[1, 2, 3, 4], [4, 1]], [[1, 2], [2]]]);
    expect(() => wrongShape.opt.loadStateDict(sd)).toThrow(/state\.0\.exp_avg.*\[2, 2\].*\[4, 1\]/);
    const x = param([1]);
    const single = new SGD([x]);
    live.push(x, single);
    expect(() => single.loadStateDict(sd)).toThrow('2 parameter group(s) but the optimizer has 1');
    const y = param([1]);
    const threeParams = new AdamW([{ params: [a.params[0]] }, { params: [a.params[1], y] }]);
    live.push(y);
    expect(() => threeParams.loadStateDict(sd)).toThrow('group 1 has 1 parameter(s) but the optimizer\'s group has 2');
    // A failed load leaves the optimizer as it was.
    expect(wrongShape.opt.getState(wrongShape.params[0])).toBeUndefined();
    Object.values(sd.tensors).forEach((t) => t.dispose());
  });
});

describe('memory', () => {
  it('keeps tf.memory().numTensors flat over 50 steps', () => {
    const w = param([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [2, 3]);
    const b = param([0.1, -0.1]);
    const adam = new AdamW([w], { lr: 0.01, amsgrad: true });
    const sgd = new SGD([b], { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 0.1 });
    live.push(w, b, adam, sgd);
    const lossFn = (): tf.Scalar => tf.sum(tf.square(tf.add(w.variable, 1)));
    const step = (): void => {
      // A real gradient from tfjs, then clipping and both optimizers.
      const { value, grads } = tf.variableGrads(lossFn, [w.variable]);
      value.dispose();
      w.grad = grads[w.variable.name];
      b.grad = tf.ones([2]);
      clipGradNorm([w, b], 0.5);
      adam.step();
      sgd.step();
      adam.zeroGrad();
      sgd.zeroGrad();
    };
    step(); // creates the state variables
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) step();
    expect(tf.memory().numTensors).toBe(n0);
  });
});
