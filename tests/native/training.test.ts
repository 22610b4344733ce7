import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../core/tf.js';
import { setBlasEnabled } from '../../core/native/backend.js';
import { disposeTrainer, makeBlockParams, makeTrainer, trainStep } from '../../scripts/bench/transformer_block.js';
import type { BlockConfig } from '../../scripts/bench/transformer_block.js';
import { NATIVE, expectClose, randomArray, setupNative } from './helpers.js';

beforeAll(setupNative);

/** Losses of three training steps and the final parameters, on one backend. */
function train(backend: string, fused: boolean, cfg: BlockConfig): { losses: number[]; params: Float32Array[] } {
  const prev = tf.getBackend();
  tf.setBackend(backend);
  try {
    const tr = makeTrainer(makeBlockParams(cfg, 7));
    const x = tf.tensor(randomArray(cfg.batch * cfg.tokens * cfg.width, 5), [cfg.batch, cfg.tokens, cfg.width]);
    const losses = [0, 1, 2].map(() => trainStep(tr, x, cfg, fused, 1e-2));
    const params = Object.values(tr.params).map((p) => p.dataSync().slice() as Float32Array);
    x.dispose();
    disposeTrainer(tr);
    return { losses, params };
  } finally {
    tf.setBackend(prev);
  }
}

describe('a transformer-block training step (gradients through the native kernels)', () => {
  for (const causal of [false, true]) {
    it(`gives the tfjs cpu losses and updates (${causal ? 'causal' : 'no mask'}), fused and unfused`, () => {
      const cfg: BlockConfig = { batch: 2, tokens: 5, width: 16, heads: 2, causal };
      const ref = train('cpu', false, cfg);
      for (const blas of [true, false]) {
        setBlasEnabled(blas);
        for (const fused of [false, true]) {
          const got = train(NATIVE, fused, cfg);
          expectClose(got.losses, ref.losses, 1e-4, 1e-6, `losses fused=${fused} blas=${blas}`);
          got.params.forEach((p, i) => expectClose(p, ref.params[i], 1e-3, 1e-5, `param ${i} fused=${fused}`));
        }
      }
      setBlasEnabled(true);
      // training does something
      expect(ref.losses[2]).toBeLessThan(ref.losses[0]);
    });
  }

  it('does not leak tensors', () => {
    const prev = tf.getBackend();
    tf.setBackend(NATIVE);
    const cfg: BlockConfig = { batch: 1, tokens: 3, width: 8, heads: 2, causal: true };
    const tr = makeTrainer(makeBlockParams(cfg, 3));
    const x = tf.ones([1, 3, 8]);
    trainStep(tr, x, cfg, true);
    const before = tf.memory().numTensors;
    trainStep(tr, x, cfg, true);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    disposeTrainer(tr);
    tf.setBackend(prev);
  });
});
