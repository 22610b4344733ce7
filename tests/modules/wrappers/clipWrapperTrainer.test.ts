import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Callback } from '../../../core/callback.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import type { LRSchedulerLike, OptimizerConfig, OptimizerLike } from '../../../core/types.js';
import { ClipWrapper, type ContrastiveTowers } from '../../../modules/wrappers/clipWrapper.js';

const calls: string[] = [];

class Towers extends Module implements ContrastiveTowers {
  readonly img = this.registerModule('img', new Linear(12, 8));
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  readonly txt = this.registerModule('txt', new Linear(6, 8));
  constructor() {
    super();
    this.registerParameter('logit_scale', tf.scalar(Math.log(1 / 0.07)));
  }
  encodeImage(images: Tensor): Tensor {
    calls.push(`encodeImage(${images.shape[0]})`);
    return tf.tidy(() => this.img.forward(tf.reshape(images, [images.shape[0]!, -1])));
  }
  encodeText(tokens: Tensor): Tensor {
    calls.push(`encodeText(${tokens.shape[0]})`);
    return tf.tidy(() => this.txt.forward(tf.mean(this.emb.forward(tokens), 1)));
  }
}

const cbHooks = ['onTrainBatchStart', 'onTrainBatchEnd', 'onBeforeZeroGrad', 'onBeforeBackward', 'onAfterBackward', 'onBeforeOptimizerStep'] as const;
class Spy extends Callback {}
for (const h of cbHooks) (Spy.prototype as unknown as Record<string, () => void>)[h] = () => void calls.push(`Callback.${h}`);

/** Gradient norms the optimizer saw at each step. */
const stepNorms: number[] = [];
const stepGrads: Float32Array[][] = [];

class Hooked extends ClipWrapper {
  override configureOptimizers(): OptimizerConfig {
    const cfg = super.configureOptimizers() as { optimizer: OptimizerLike & { step(): void }; lrScheduler: { scheduler: LRSchedulerLike; interval: 'step' } };
    const opt = cfg.optimizer;
    const step = opt.step.bind(opt);
    opt.step = () => {
      calls.push('optimizer.step');
      const ps = opt.paramGroups.flatMap((g) => g.params);
      stepGrads.push(this.parameters().map((p) => p.grad!.dataSync() as Float32Array));
      stepNorms.push(Math.sqrt(ps.reduce((s, p) => s + tf.tidy(() => tf.sum(tf.square(p.grad!)).dataSync()[0]!), 0)));
      step();
    };
    return cfg;
  }
  override optimizerZeroGrad(e: number, b: number, o: OptimizerLike): void {
    calls.push('optimizerZeroGrad');
    super.optimizerZeroGrad(e, b, o);
  }
  override configureGradientClipping(o: OptimizerLike, v: number | null, a: 'norm' | 'value'): void {
    calls.push('configureGradientClipping');
    super.configureGradientClipping(o, v, a);
  }
  override lrSchedulerStep(s: LRSchedulerLike): void {
    calls.push('lrSchedulerStep');
    super.lrSchedulerStep(s);
  }
  override clampLogitScale(): void {
    calls.push('clampLogitScale');
    super.clampLogitScale();
  }
}
for (const h of cbHooks) (Hooked.prototype as unknown as Record<string, () => void>)[h] = () => void calls.push(h);

function data(n: number) {
  seedEverything(7);
  return { images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', 7), texts: tf.randomUniform([n, 5], 0, 20, 'int32', 8) };
}

async function fit(minibatchSize: number, extra: Record<string, unknown> = {}): Promise<Hooked> {
  seedEverything(3);
  const model = new Hooked(new Towers(), { minibatchSize, lr: 0.01, warmupSteps: 1 });
  const trainer = new Trainer({ callbacks: [new Spy()], maxEpochs: 1, accumulateGradBatches: 2, logger: false, enableProgressBar: false, enableCheckpointing: false, numSanityValSteps: 0, ...extra });
  calls.length = 0;
  stepNorms.length = 0;
  stepGrads.length = 0;
  await trainer.fit(model, { train: new ArrayDataLoader(data(16), { batchSize: 4 }) });
  return model;
}

const start = ['Callback.onTrainBatchStart', 'onTrainBatchStart'];
const zeroGrad = ['Callback.onBeforeZeroGrad', 'onBeforeZeroGrad', 'optimizerZeroGrad'];
const backward = ['Callback.onBeforeBackward', 'onBeforeBackward'];
const afterBackward = ['Callback.onAfterBackward', 'onAfterBackward'];
const step = ['Callback.onBeforeOptimizerStep', 'onBeforeOptimizerStep', 'configureGradientClipping', 'optimizer.step', 'clampLogitScale', 'lrSchedulerStep'];
const end = ['Callback.onTrainBatchEnd', 'onTrainBatchEnd'];

describe('ClipWrapper inside the Trainer (accumulateGradBatches 2)', () => {
  it('hook order without gradient caching: one forward per batch, one backward, Lightning\'s step', async () => {
    await fit(0);
    const fwd = ['encodeImage(4)', 'encodeText(4)'];
    const window = [...start, ...fwd, ...zeroGrad, ...backward, ...afterBackward, ...end, ...start, ...fwd, ...backward, ...afterBackward, ...step, ...end];
    expect(calls).toEqual([...window, ...window]);
  });

  it('hook order with gradient caching (chunks of 2): cache pass, then one onBeforeBackward and one onAfterBackward per batch', async () => {
    await fit(2);
    const cache = ['encodeImage(2)', 'encodeImage(2)', 'encodeText(2)', 'encodeText(2)'];
    const grads = ['encodeImage(2)', 'encodeText(2)', 'encodeImage(2)', 'encodeText(2)'];
    const window = [
      ...start, ...cache, ...zeroGrad, ...backward, ...grads, ...afterBackward, ...end,
      ...start, ...cache, ...backward, ...grads, ...afterBackward, ...step, ...end,
    ];
    expect(calls).toEqual([...window, ...window]);
  });

  it('accumulates: the first step sees the mean gradient of its two batches (same with and without caching)', async () => {
    seedEverything(3);
    const ref = new ClipWrapper(new Towers(), { lr: 0.01, warmupSteps: 1 });
    const d = data(16);
    const grads: Float32Array[][] = [];
    for (const s of [0, 4]) {
      for (const p of ref.parameters()) p.zeroGrad();
      const r = await ref.computeGradients({ images: tf.slice(d.images, s, 4), texts: tf.slice(d.texts, s, 4) });
      tf.dispose([r.loss, r.logits]);
      grads.push(ref.parameters().map((p) => p.grad!.dataSync() as Float32Array));
    }
    for (const m of [0, 2]) {
      await fit(m);
      expect(stepGrads).toHaveLength(2);
      stepGrads[0]!.forEach((g, i) => g.forEach((v, j) => expect(v).toBeCloseTo((grads[0]![i]![j]! + grads[1]![i]![j]!) / 2, 5)));
    }
  });

  it('clips gradients (gradientClipVal) before the optimizer step', async () => {
    await fit(2);
    const unclipped = [...stepNorms];
    expect(Math.min(...unclipped)).toBeGreaterThan(0.01);
    await fit(2, { gradientClipVal: 0.01 });
    expect(stepNorms).toHaveLength(2);
    for (const n of stepNorms) expect(n).toBeCloseTo(0.01, 5);
  });
});
