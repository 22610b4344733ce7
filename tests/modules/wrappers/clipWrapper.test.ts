import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import { ClipWrapper, chunks, type ContrastiveTowers } from '../../../modules/wrappers/clipWrapper.js';

/** A tiny two-tower model: flatten→Linear for images, mean token embedding→Linear for text. */
class ToyTowers extends Module implements ContrastiveTowers {
  readonly img = this.registerModule('img', new Linear(2 * 2 * 3, 8));
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  readonly txt = this.registerModule('txt', new Linear(6, 8));
  constructor() {
    super();
    this.registerParameter('logit_scale', tf.scalar(Math.log(1 / 0.07)));
  }
  encodeImage(images: Tensor): Tensor {
    return tf.tidy(() => this.img.forward(tf.reshape(images, [images.shape[0]!, -1])));
  }
  encodeText(tokens: Tensor): Tensor {
    return tf.tidy(() => this.txt.forward(tf.mean(this.emb.forward(tokens), 1)));
  }
}

function batch(n: number, seed: number) {
  seedEverything(seed);
  return {
    images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', seed),
    texts: tf.randomUniform([n, 5], 0, 20, 'int32', seed + 1),
  };
}

function grads(w: ClipWrapper): Record<string, Float32Array> {
  return Object.fromEntries(w.namedParameters().map(([n, p]) => [n, p.grad!.dataSync() as Float32Array]));
}

describe('ClipWrapper', () => {
  it('chunks cover the batch', () => {
    expect(chunks(7, 3)).toEqual([[0, 3], [3, 3], [6, 1]]);
  });

  it('gradient caching gives exactly the full-batch gradient (every parameter, logit scale included)', async () => {
    seedEverything(1);
    const full = new ClipWrapper(new ToyTowers());
    const cached = new ClipWrapper(new ToyTowers(), { minibatchSize: 3 });
    cached.loadStateDict(full.stateDict());
    const b = batch(7, 5);
    const r1 = await full.computeGradients(b);
    const r2 = await cached.computeGradients(b);
    expect(r2.loss.dataSync()[0]).toBeCloseTo(r1.loss.dataSync()[0]!, 5);
    const g1 = grads(full);
    const g2 = grads(cached);
    expect(Object.keys(g2).sort()).toEqual(Object.keys(g1).sort());
    for (const k of Object.keys(g1)) {
      const a = g1[k]!;
      const c = g2[k]!;
      let maxAbs = 0;
      for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i]!));
      expect(maxAbs).toBeGreaterThan(0);
      for (let i = 0; i < a.length; i++) expect(c[i]).toBeCloseTo(a[i]!, 5);
    }
  });

  it('trains through the Trainer: loss goes down, logit scale stays clamped, no leaks', async () => {
    seedEverything(2);
    const model = new ClipWrapper(new ToyTowers(), { minibatchSize: 4, lr: 0.05, warmupSteps: 2 });
    const data = batch(16, 9);
    const loader = new ArrayDataLoader(data, { batchSize: 8, shuffle: true, seed: 3 });
    const losses: number[] = [];
    model.onTrainBatchEnd = (out) => void losses.push(out.loss!);
    const trainer = new Trainer({ maxEpochs: 30, logger: false, enableProgressBar: false, enableCheckpointing: false });
    await trainer.fit(model, { train: loader });
    expect(losses).toHaveLength(60);
    const before = tf.memory().numTensors;
    await new Trainer({ maxEpochs: 2, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(model, { train: loader });
    expect(tf.memory().numTensors).toBe(before);
    expect(losses.slice(56, 60).reduce((a, b) => a + b) / 4).toBeLessThan(0.5 * (losses.slice(0, 4).reduce((a, b) => a + b) / 4));
    const s = model.logitScale.variable.dataSync()[0]!;
    expect(s).toBeGreaterThanOrEqual(0);
    expect(s).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    expect(trainer.callbackMetrics.train_acc).toBeGreaterThan(0.5);
  });

  it('excludes gains, biases and logit_scale from weight decay', () => {
    const m = new ClipWrapper(new ToyTowers(), { weightDecay: 0.2, totalSteps: 10, warmupSteps: 2 });
    const cfg = m.configureOptimizers() as unknown as { optimizer: { paramGroups: Array<{ params: unknown[]; weightDecay: number }> } };
    const [decay, noDecay] = cfg.optimizer.paramGroups;
    expect(decay!.weightDecay).toBe(0.2);
    expect(noDecay!.weightDecay).toBe(0);
    // decay: img.weight, emb.weight, txt.weight; no decay: img.bias, txt.bias, logit_scale
    expect(decay!.params).toHaveLength(3);
    expect(noDecay!.params).toHaveLength(3);
  });

  it('rejects bad hyperparameters with the flag named', () => {
    expect(() => new ClipWrapper(new ToyTowers(), { minibatchSize: -1 })).toThrow(/--minibatch_size/);
    expect(() => new ClipWrapper(new ToyTowers(), { lr: 0 })).toThrow(/--lr/);
  });
});
