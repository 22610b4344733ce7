import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import { create } from '../../../core/registry.js';
import * as F from '../../../core/nn/functional.js';
import { zeroShotAccuracy, zeroShotClassifier } from '../../../callbacks/zeroShot.js';
import { LlipModel } from '../../../modules/llip/model.js';
import { LlipWrapper, llipLoss } from '../../../modules/llip/wrapper.js';

/** 16 random image–caption pairs for the 32-px tiny-ViT (captions: SOT, 3 random words, EOT). */
function pairs(n: number, seed: number) {
  const words = tf.randomUniform([n, 3], 1, 400, 'int32', seed + 1);
  const texts = tf.concat([tf.fill([n, 1], 49406, 'int32'), words, tf.fill([n, 1], 49407, 'int32')], 1);
  return { images: tf.randomNormal([n, 32, 32, 3], 0, 1, 'float32', seed), texts };
}

// lr 1e-3 with 6 warmup steps: at 2e-3/3 steps (open_clip's warmup moves the weights from step 0) the tiny
// SigLIP model stalls at the all-negatives plateau (loss ~3.0) on these 16 random pairs.
async function train(loss: 'siglip' | 'infonce', epochs: number): Promise<{ losses: number[]; model: LlipWrapper }> {
  seedEverything(4);
  const model = new LlipWrapper({ modelName: 'tiny-ViT', numMixtureTokens: 4, loss, lr: 1e-3, warmupSteps: 6, weightDecay: 0.05 });
  const losses: number[] = [];
  model.onTrainBatchEnd = (out) => void losses.push(out.loss!);
  const loader = new ArrayDataLoader(pairs(16, 2), { batchSize: 8, shuffle: true, seed: 1 });
  await new Trainer({ maxEpochs: epochs, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(model, { train: loader });
  return { losses, model };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('LlipWrapper', () => {
  it('a tiny Llip (K = 4, SigLIP) trains on generated pairs: the loss goes down, the scale stays clamped, no leaks', async () => {
    const before = tf.memory().numTensors;
    const { losses, model } = await train('siglip', 15);
    expect(losses).toHaveLength(30);
    expect(mean(losses.slice(-4))).toBeLessThan(0.6 * mean(losses.slice(0, 4)));
    const s = model.model.logitScale.variable.dataSync()[0]!;
    expect(s).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    // The bias learned (SigLIP's bias is a parameter).
    expect(model.model.logitBias.variable.dataSync()[0]).not.toBe(-10);
    const params = model.parameters().length;
    expect(tf.memory().numTensors - before).toBeLessThanOrEqual(3 * params + 20);
  }, 120_000);

  it('the InfoNCE option trains too and leaves the bias alone', async () => {
    const { losses, model } = await train('infonce', 10);
    expect(mean(losses.slice(-4))).toBeLessThan(0.8 * mean(losses.slice(0, 4)));
    expect(model.model.logitBias.variable.dataSync()[0]).toBe(-10);
  }, 120_000);

  it('its gradient is the loss of the conditioned similarities (checked against materialised z)', async () => {
    seedEverything(5);
    const w = new LlipWrapper({ modelName: 'tiny-ViT', numMixtureTokens: 3 });
    const b = pairs(4, 7);
    const { loss } = await w.computeGradients(b);
    const m = w.model;
    const h = m.encodeImage(b.images);
    const t = F.normalize(m.encodeText(b.texts));
    const z = m.conditionedImageEmbeddings(h, t);
    const s = tf.sum(tf.mul(F.normalize(z), tf.expandDims(t, 0)), -1);
    const sv = s.arraySync() as number[][];
    const [scale, bias] = [Math.exp(m.logitScale.variable.dataSync()[0]!), m.logitBias.variable.dataSync()[0]!];
    let ref = 0;
    sv.forEach((row, i) => row.forEach((v, j) => (ref += Math.log1p(Math.exp(-(i === j ? 1 : -1) * (scale * v + bias))))));
    expect(loss.dataSync()[0]).toBeCloseTo(ref / 4, 4);
    for (const [name, p] of w.namedParameters()) expect(p.grad, name).not.toBeNull();
    expect(llipLoss(s, m.logitScale.variable, m.logitBias.variable, 'siglip').dataSync()[0]).toBeCloseTo(ref / 4, 4);
  });

  it('steps through the Trainer: accumulation 2 equals one batch of twice the size, clipping applies', async () => {
    // Two batches of 4 accumulated vs one batch of 8: the same data, one optimizer step each.
    // SigLIP's loss is a mean over each batch's rows, so the accumulated mean of the two halves
    // equals the full batch's only when each half's loss is taken over its own pairs: compare
    // against a reference that sums the two half-batch gradients / 2 by hand.
    const data = pairs(8, 9);
    const run = async (opts: { batchSize: number; accumulate: number; clip?: number }) => {
      seedEverything(6);
      const w = new LlipWrapper({ modelName: 'tiny-ViT', numMixtureTokens: 2, lr: 1e-2, warmupSteps: 0, weightDecay: 0 });
      const steps: number[] = [];
      w.onBeforeOptimizerStep = () => void steps.push(1);
      await new Trainer({ maxEpochs: 1, accumulateGradBatches: opts.accumulate, gradientClipVal: opts.clip ?? null, logger: false, enableProgressBar: false, enableCheckpointing: false })
        .fit(w, { train: new ArrayDataLoader(data, { batchSize: opts.batchSize }) });
      return { w, steps: steps.length };
    };
    const acc = await run({ batchSize: 4, accumulate: 2 });
    expect(acc.steps).toBe(1);
    // Reference: the mean of the two half-batch gradients, applied as one AdamW step.
    seedEverything(6);
    const ref = new LlipWrapper({ modelName: 'tiny-ViT', numMixtureTokens: 2, lr: 1e-2, warmupSteps: 0, weightDecay: 0 });
    for (const s of [0, 4]) {
      const part = { images: tf.slice(data.images, s, 4), texts: tf.slice(data.texts, s, 4) };
      const r = await ref.computeGradients(part);
      tf.dispose([r.loss, r.similarity]);
    }
    for (const p of ref.parameters()) if (p.grad) p.grad = tf.div(p.grad, 2) as typeof p.grad;
    const opt = (ref.configureOptimizers() as unknown as { optimizer: { step(): Promise<void> } }).optimizer;
    await opt.step();
    const a = acc.w.model.logitBias.variable.dataSync()[0]!;
    const b = ref.model.logitBias.variable.dataSync()[0]!;
    expect(a).toBeCloseTo(b, 5);
    expect(a).not.toBe(-10);
    const clipped = await run({ batchSize: 8, accumulate: 1, clip: 1e-6 });
    expect(clipped.steps).toBe(1);
  }, 120_000);

  it('is registered as --model llip and needs --num_mixture_tokens', () => {
    const w = create<LlipWrapper>('model', 'llip', { modelName: 'tiny-ViT', numMixtureTokens: 2 });
    expect(w).toBeInstanceOf(LlipWrapper);
    expect(w.hparams.num_mixture_tokens).toBe(2);
    expect(() => create('model', 'llip', { modelName: 'tiny-ViT' })).toThrow(/--num_mixture_tokens/);
    expect(() => new LlipWrapper({ modelName: 'tiny-ViT', numMixtureTokens: 2, loss: 'hinge' as never })).toThrow(/'siglip' or 'infonce'/);
  });
});

describe('zero-shot with Llip', () => {
  it('each class embedding conditions every image: predictions equal argmax over classes of cos(z_{i|c}, c)', async () => {
    seedEverything(6);
    const m = new LlipModel('tiny-ViT', { numMixtureTokens: 4 });
    const classTokens = [0, 1, 2].map((c) => tf.tensor2d([[49406, 320 + c, 49407], [49406, 330 + c, 49407]], [2, 3], 'int32'));
    const classifier = zeroShotClassifier(m, classTokens);
    const images = tf.randomNormal([12, 32, 32, 3], 0, 1, 'float32', 8);
    // Reference: conditioned embeddings materialised, per class.
    const cls = tf.transpose(classifier);
    const z = m.conditionedImageEmbeddings(m.encodeImage(images), cls);
    const s = tf.sum(tf.mul(F.normalize(z), tf.expandDims(cls, 0)), -1);
    const pred = Array.from(tf.argMax(s, 1).dataSync());
    // Labels = the reference predictions for the first 8 images, a wrong class for the rest.
    const labels = pred.map((p, i) => (i < 8 ? p : (p + 1) % 3));
    const loader = new ArrayDataLoader({ images, labels: tf.tensor1d(labels, 'int32') }, { batchSize: 5 });
    const r = await zeroShotAccuracy(m, classifier, loader as never);
    expect(r.count).toBe(12);
    expect(r.top1).toBeCloseTo(8 / 12, 6);
  });
});
