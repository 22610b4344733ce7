/**
 * core/optim's Adam/AdamW on lightclip-cpu go through the fused native kernel (one in-place
 * pass per parameter); these tests hold it to the unfused tf-op update.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import { Parameter } from '../../core/nn/module.js';
import { Adam, AdamW } from '../../core/optim/index.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { NATIVE, expectClose, randomArray, setupNative } from './helpers.js';

beforeAll(setupNative);
afterEach(() => tf.setBackend('cpu'));

const SHAPES = [[7, 5], [3], [1], [4, 1, 6], [0, 3]];

/** Parameters with fixed values, and a gradient function that changes every step. */
function makeParams(): Parameter[] {
  return SHAPES.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    const t = tf.tensor(randomArray(n, 11 + i, -2, 2), s);
    const p = new Parameter(t);
    t.dispose();
    return p;
  });
}

function setGrads(params: Parameter[], step: number): void {
  params.forEach((p, i) => {
    p.zeroGrad();
    // some exact zeros, so that the eps term matters
    const g = randomArray(p.size, 100 * step + i, -1, 1).map((v, j) => (j % 4 === 3 ? 0 : v));
    p.grad = tf.tensor(g, p.shape);
  });
}

type Make = (params: Parameter[]) => Adam;

/** Final parameter values and moment estimates after `steps` steps on `backend`, fused or not. */
function run(backend: string, fused: boolean, make: Make, steps = 6): { params: number[][]; moments: number[][] } {
  tf.setBackend(backend);
  const params = makeParams();
  const opt = make(params);
  opt.useFused = fused;
  for (let s = 1; s <= steps; s++) {
    setGrads(params, s);
    opt.step();
    // an LR schedule moves lr between steps: the kernel must read the group's current value
    for (const g of opt.paramGroups) g.lr *= 0.9;
  }
  const out = {
    params: params.map((p) => Array.from(p.variable.dataSync())),
    moments: params.flatMap((p) => ['exp_avg', 'exp_avg_sq'].map((k) => {
      const st = opt.getState(p);
      return st && st.tensors.get(k) ? Array.from(st.tensors.get(k)!.dataSync()) : [];
    })),
  };
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
  return out;
}

function compare(make: Make, label: string): void {
  const ref = run('cpu', false, make);
  const unfused = run(NATIVE, false, make);
  const fused = run(NATIVE, true, make);
  ref.params.forEach((p, i) => {
    expectClose(unfused.params[i], p, 1e-5, 1e-6, `${label} unfused param ${i}`);
    expectClose(fused.params[i], p, 1e-5, 1e-6, `${label} fused param ${i}`);
  });
  ref.moments.forEach((m, i) => expectClose(fused.moments[i], m, 1e-5, 1e-7, `${label} fused moment ${i}`));
}

describe('fused AdamW (lightclip-cpu) against the unfused update', () => {
  it("AdamW with CLIP's ViT settings over two weight-decay groups", () => {
    compare((params) => new AdamW(weightDecayParamGroups(params.map((p, i) => [`w${i}`, p] as const), 0.2),
      { lr: 5e-2, betas: [0.9, 0.98], eps: 1e-6 }), 'clip groups');
  });

  it('AdamW with PyTorch defaults, and Adam without weight decay', () => {
    compare((params) => new AdamW(params, { lr: 1e-2 }), 'adamw defaults');
    compare((params) => new Adam(params, { lr: 1e-2, betas: [0.8, 0.99] }), 'adam');
  });

  it('takes the fused path on lightclip-cpu (the parameter array is updated in place)', () => {
    tf.setBackend(NATIVE);
    const [p] = makeParams();
    const opt = new AdamW([p], { lr: 0.1 });
    setGrads([p], 1);
    opt.step(); // the first step copies arrays shared with the initial tensors
    setGrads([p], 2);
    const before = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
    const arr = before.data.get(p.variable.dataId).values;
    opt.step();
    expect(before.data.get(p.variable.dataId).values).toBe(arr);
    opt.useFused = false;
    setGrads([p], 3);
    opt.step();
    expect(before.data.get(p.variable.dataId).values).not.toBe(arr);
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
  });

  for (const hold of ['dataSync', 'clone'] as const) {
    it(`never changes what the caller holds: an array read out with dataSync, or a clone (${hold})`, () => {
      tf.setBackend(NATIVE);
      const [p] = makeParams();
      const opt = new AdamW([p], { lr: 0.1 });
      setGrads([p], 1);
      opt.step();
      const snapshot = Array.from(p.variable.dataSync().slice());
      // a fresh step so that the parameter's array is private again before the caller takes it
      const held = hold === 'dataSync' ? null : tf.clone(p.variable);
      const read = hold === 'dataSync' ? p.variable.dataSync() : held!.dataSync().slice();
      const before = Array.from(read);
      setGrads([p], 2);
      opt.step();
      expect(Array.from(read)).toEqual(before);
      if (held) expect(Array.from(held.dataSync())).toEqual(before);
      expect(Array.from(p.variable.dataSync())).not.toEqual(before);
      expect(before).toEqual(snapshot);
      held?.dispose();
      opt.zeroGrad();
      opt.dispose();
      p.dispose();
    });
  }

  it('amsgrad and L2-decay Adam keep the unfused path and its results', () => {
    compare((params) => new AdamW(params, { lr: 1e-2, amsgrad: true }), 'amsgrad');
    compare((params) => new Adam(params, { lr: 1e-2, weightDecay: 0.1 }), 'adam l2');
  });
});
