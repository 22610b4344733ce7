import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import * as F from '../../../core/nn/functional.js';
import { ClipWrapper, type ContrastiveTowers } from '../../../modules/wrappers/clipWrapper.js';

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
  return { images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', seed), texts: tf.randomUniform([n, 5], 0, 20, 'int32', seed + 1) };
}

describe('ClipWrapper with the SigLIP loss (--siglip)', () => {
  it('starts from scale ln 10 and bias −10, saved as loss.logit_bias, no weight decay on it', () => {
    const w = new ClipWrapper(new ToyTowers(), { loss: 'siglip', totalSteps: 10, warmupSteps: 1 });
    expect(w.logitScale.variable.dataSync()[0]).toBeCloseTo(Math.log(10), 6);
    expect(w.stateDict()['loss.logit_bias']!.dataSync()[0]).toBe(-10);
    expect(w.hparams.loss).toBe('siglip');
    const cfg = w.configureOptimizers() as unknown as { optimizer: { paramGroups: Array<{ params: Array<{ variable: unknown }>; weightDecay: number }> } };
    const bias = w.namedParameters().find(([n]) => n === 'loss.logit_bias')![1];
    const group = cfg.optimizer.paramGroups.find((g) => g.params.includes(bias as never))!;
    expect(group.weightDecay).toBe(0);
    expect(() => new ClipWrapper(new ToyTowers(), { loss: 'sigmoid' as never })).toThrow(/'infonce' or 'siglip'/);
  });

  it('its gradient (bias and scale included) is the sigmoid loss\'s, with and without gradient caching', async () => {
    seedEverything(1);
    const full = new ClipWrapper(new ToyTowers(), { loss: 'siglip' });
    const cached = new ClipWrapper(new ToyTowers(), { loss: 'siglip', minibatchSize: 3 });
    cached.loadStateDict(full.stateDict());
    const b = batch(7, 5);
    const r1 = await full.computeGradients(b);
    const r2 = await cached.computeGradients(b);
    // Independent value: the sigmoid loss written out in plain numbers on the model's features.
    const zi = F.normalize(full.model.encodeImage(b.images)).arraySync() as number[][];
    const zt = F.normalize(full.model.encodeText(b.texts)).arraySync() as number[][];
    let s = 0;
    let dBias = 0;
    zi.forEach((i, r) => zt.forEach((t, c) => {
      const l = 10 * i.reduce((a, v, k) => a + v * t[k]!, 0) - 10;
      const y = r === c ? 1 : -1;
      s += Math.log1p(Math.exp(-y * l));
      dBias += -y / (1 + Math.exp(y * l));
    }));
    expect(r1.loss.dataSync()[0]).toBeCloseTo(s / 7, 5);
    expect(r2.loss.dataSync()[0]).toBeCloseTo(s / 7, 5);
    const gb = (w: ClipWrapper) => w.namedParameters().find(([n]) => n === 'loss.logit_bias')![1].grad!.dataSync()[0]!;
    expect(gb(full)).toBeCloseTo(dBias / 7, 5);
    expect(gb(cached)).toBeCloseTo(dBias / 7, 5);
    for (const [[n, p], [, q]] of full.namedParameters().map((e, i) => [e, cached.namedParameters()[i]!] as const)) {
      const a = p.grad!.dataSync();
      const c = q.grad!.dataSync();
      for (let i = 0; i < a.length; i++) expect(c[i], n).toBeCloseTo(a[i]!, 5);
    }
  });

  it('trains: the loss goes down', async () => {
    seedEverything(2);
    const model = new ClipWrapper(new ToyTowers(), { loss: 'siglip', lr: 0.05, warmupSteps: 2 });
    const loader = new ArrayDataLoader(batch(16, 9), { batchSize: 8, shuffle: true, seed: 3 });
    const losses: number[] = [];
    model.onTrainBatchEnd = (out) => void losses.push(out.loss!);
    await new Trainer({ maxEpochs: 30, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(model, { train: loader });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b) / xs.length;
    expect(mean(losses.slice(-4))).toBeLessThan(0.5 * mean(losses.slice(0, 4)));
  });
});
