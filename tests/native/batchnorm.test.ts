/**
 * Training-mode batch norm: the fused native op (core/native/fused.ts batchNormTrain) against
 * the tf-op composition, and the ModifiedResNet's use of it (modules/clip applyBatchNorm)
 * against BatchNorm2d itself, running statistics included.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { backward } from '../../core/autograd.js';
import { seedEverything } from '../../core/random.js';
import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { createClip } from '../../modules/clip/factory.js';
import { batchNormComposed, batchNormTrain, nativeActive } from '../../core/native/fused.js';
import { BatchNorm2d } from '../../core/nn/index.js';
import { applyBatchNorm } from '../../modules/clip/modifiedResnet.js';
import { NATIVE, expectClose, rand, runOn, setupNative, t } from './helpers.js';

beforeAll(setupNative);
afterEach(() => tf.setBackend('cpu'));

type Spec = ReturnType<typeof rand>;

/** y, mean, variance and the gradients of sum(y * w) w.r.t. x, gamma and beta. */
function outputs(fn: typeof batchNormTrain, x: Spec, g: Spec, b: Spec, w: Spec): Tensor[] {
  const { y, mean, variance } = fn(t(x), t(g), t(b), 1e-5);
  const grads = tf.grads((xi: Tensor, gi: Tensor, bi: Tensor) => fn(xi, gi, bi, 1e-5).y.mul(t(w)).sum())([t(x), t(g), t(b)]);
  return [y, mean, variance, ...grads];
}

describe('batchNormTrain', () => {
  // [N, C], NHWC maps, one channel, one row per channel (zero variance), many channels
  const shapes = [[8, 5], [2, 3, 4, 6], [16, 1], [1, 1, 1, 3], [3, 2, 2, 64]];
  for (const shape of shapes) {
    it(`values, statistics and gradients match the composition for [${shape}]`, () => {
      const c = shape[shape.length - 1];
      const x = rand(shape, -2, 2);
      const g = rand([c], 0.5, 1.5);
      const b = rand([c]);
      const w = rand(shape);
      const got = runOn(NATIVE, () => {
        expect(nativeActive()).toBe(true);
        return outputs(batchNormTrain, x, g, b, w);
      });
      const ref = runOn('cpu', () => outputs(batchNormComposed, x, g, b, w));
      const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'];
      ref.forEach((r, i) => {
        expect(got[i].shape, names[i]).toEqual(r.shape);
        // rows of one value: var 0, so dx ~ rstd = 1/sqrt(eps) amplifies rounding
        const tol = shape[0] === 1 ? 2e-2 : 2e-4;
        expectClose(got[i].values, r.values, tol, tol, `${shape} ${names[i]}`);
      });
    });
  }

  it('no rows: an empty output and zero statistics, as the composition (whose gradient tfjs cannot take)', () => {
    const x = rand([0, 3]);
    const [g, b] = [rand([3]), rand([3])];
    const fwd = (fn: typeof batchNormTrain) => () => {
      const r = fn(t(x), t(g), t(b));
      return [r.y, r.mean, r.variance];
    };
    const got = runOn(NATIVE, fwd(batchNormTrain));
    const ref = runOn('cpu', fwd(batchNormComposed));
    ref.forEach((r, i) => {
      expect(got[i].shape).toEqual(r.shape);
      expectClose(got[i].values, r.values, 0, 0, `empty ${i}`);
    });
  });

  it('handles a large common offset (two-pass variance)', () => {
    const x = rand([64, 4], 999, 1001);
    const [g, b, w] = [rand([4], 0.5, 1.5), rand([4]), rand([64, 4])];
    const got = runOn(NATIVE, () => outputs(batchNormTrain, x, g, b, w));
    const ref = runOn('cpu', () => outputs(batchNormComposed, x, g, b, w));
    ref.forEach((r, i) => expectClose(got[i].values, r.values, 5e-3, 5e-3, `offset ${i}`));
  });
});

describe('applyBatchNorm (ModifiedResNet) against BatchNorm2d', () => {
  for (const momentum of [0.1, null]) {
    it(`same output, gradients and running statistics in training mode (momentum ${momentum})`, () => {
      const x = [rand([2, 3, 3, 6], -1, 3), rand([2, 3, 3, 6], -2, 1)];
      const w = rand([2, 3, 3, 6]);
      const run = (backend: string, fn: (bn: BatchNorm2d, xi: Tensor) => Tensor): number[][] => {
        tf.setBackend(backend);
        const bn = new BatchNorm2d(6, { momentum });
        bn.train();
        const out: number[][] = [];
        for (const xs of x) {
          const xi = t(xs);
          const [dx, dw, db] = tf.grads((a: Tensor, gw: Tensor, gb: Tensor) => {
            // route the parameters through the module by swapping them in for the duration
            return tf.tidy(() => fn(bn, a).mul(t(w)).sum().add(gw.sum().mul(0)).add(gb.sum().mul(0)));
          })([xi, bn.weight!.variable, bn.bias!.variable]);
          out.push(Array.from(fn(bn, xi).dataSync()), Array.from(dx.dataSync()));
          tf.dispose([xi, dx, dw, db]);
        }
        // fn ran twice per input (grads, then the value): 4 updates of the statistics
        out.push(Array.from(bn.runningMean!.dataSync()), Array.from(bn.runningVar!.dataSync()), Array.from(bn.numBatchesTracked!.dataSync()));
        bn.dispose();
        return out;
      };
      const ref = run('cpu', (bn, xi) => bn.forward(xi));
      const got = run(NATIVE, (bn, xi) => applyBatchNorm(bn, xi));
      expect(got[got.length - 1]).toEqual([4]);
      ref.forEach((r, i) => expectClose(got[i], r, 2e-4, 2e-5, `output ${i}`));
    });
  }

  it('gives the parameters the same gradients as BatchNorm2d', () => {
    const x = rand([4, 2, 2, 5], -1, 2);
    const w = rand([4, 2, 2, 5]);
    const grads = (backend: string, fn: (bn: BatchNorm2d, xi: Tensor) => Tensor): number[][] => {
      tf.setBackend(backend);
      const bn = new BatchNorm2d(5);
      bn.train();
      const { grads: g } = tf.variableGrads(() => fn(bn, t(x)).mul(t(w)).sum() as tf.Scalar, [bn.weight!.variable, bn.bias!.variable]);
      const out = [bn.weight!.variable, bn.bias!.variable].map((v) => Array.from(g[v.name].dataSync()));
      tf.dispose(Object.values(g));
      bn.dispose();
      return out;
    };
    const ref = grads('cpu', (bn, xi) => bn.forward(xi));
    const got = grads(NATIVE, (bn, xi) => applyBatchNorm(bn, xi));
    ref.forEach((r, i) => expectClose(got[i], r, 2e-4, 2e-5, i === 0 ? 'dweight' : 'dbias'));
  });

  it('leaves eval mode and a one-value batch to BatchNorm2d', () => {
    tf.setBackend(NATIVE);
    const bn = new BatchNorm2d(3);
    bn.train();
    const one = tf.ones([1, 1, 1, 3]);
    expect(() => applyBatchNorm(bn, one)).toThrow(/more than 1 value per channel/);
    bn.eval();
    const x = t(rand([2, 2, 2, 3]));
    expectClose(applyBatchNorm(bn, x).dataSync(), bn.forward(x).dataSync(), 0, 0, 'eval');
    tf.dispose([one, x]);
    bn.dispose();
  });
});

describe('a CLIP ModifiedResNet in training mode', () => {
  it('gives the same loss, gradients and BatchNorm statistics on lightclip-cpu as on cpu', () => {
    const images = rand([3, 32, 32, 3]);
    const run = (backend: string): number[][] => {
      tf.setBackend(backend);
      seedEverything(4);
      const model = createClip('tiny-RN');
      model.train();
      const params = model.parameters();
      const ids = tf.tensor2d([[49406, 5, 9, 49407], [49406, 7, 49407, 0], [49406, 49407, 0, 0]], [3, 4], 'int32');
      const loss = backward(params, () => tf.tidy(() => {
        const out = model.forward(t(images), ids);
        return out.logitsPerImage.logSoftmax().mul(tf.eye(3)).sum().neg();
      }));
      const res = [[loss.dataSync()[0]], ...params.map((p) => Array.from(p.grad!.dataSync())),
        ...model.namedBuffers().filter(([n]) => n.startsWith('visual')).map(([, b]) => Array.from(b.dataSync()))];
      tf.dispose([loss, ids]);
      model.dispose();
      return res;
    };
    const ref = run('cpu');
    const got = run(NATIVE);
    expect(got.length).toBe(ref.length);
    ref.forEach((r, i) => {
      const scale = r.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
      expectClose(got[i].map((v) => v / scale), r.map((v) => v / scale), 0, 2e-4, `entry ${i}`);
    });
  });
});
