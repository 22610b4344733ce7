import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../core/tf.js';
import { Module } from '../../core/nn/module.js';
import { Embedding } from '../../core/nn/embedding.js';
import { ArrayDataLoader } from '../../core/data.js';
import { Trainer } from '../../core/trainer.js';
import { ClipWrapper, type ContrastiveTowers } from '../../modules/wrappers/clipWrapper.js';

const MAX = Math.log(100);
/** Row i = e_i + 2·1: cosine 1 within a pair, 20/21 across, so the loss is far from saturated even at scale 100. */
const FEATURES = tf.add(tf.eye(4), 2);

/**
 * Towers whose image and text features of pair i are both row i of FEATURES: every pair is
 * aligned, so the loss always falls as the logit scale grows, and the optimizer
 * pushes the scale up against the clamp. It starts 0.05 below ln 100.
 */
class AlignedTowers extends Module implements ContrastiveTowers {
  readonly emb = this.registerModule('emb', new Embedding(4, 4));
  constructor() {
    super();
    this.emb.weight.variable.assign(FEATURES);
    this.registerParameter('logit_scale', tf.scalar(MAX - 0.05));
  }
  encodeImage(images: Tensor): Tensor {
    return tf.reshape(images, [images.shape[0]!, -1]);
  }
  encodeText(tokens: Tensor): Tensor {
    return tf.tidy(() => tf.mean(this.emb.forward(tokens), 1));
  }
}

describe('logit scale clamp during training', () => {
  it('holds the scale at ln 100 once the optimizer pushes past it', async () => {
    const towers = new AlignedTowers();
    const model = new ClipWrapper(towers, { lr: 0.1, warmupSteps: 1, weightDecay: 0 });
    const scales: number[] = [];
    model.onTrainBatchEnd = () => void scales.push(towers.namedParameters().find(([n]) => n === 'logit_scale')![1].variable.dataSync()[0]!);
    const images = tf.reshape(FEATURES, [4, 2, 2, 1]);
    const texts = tf.tensor2d([[0], [1], [2], [3]], [4, 1], 'int32');
    await new Trainer({ maxSteps: 8, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(model, {
      train: new ArrayDataLoader({ images, texts }, { batchSize: 4 }),
    });
    expect(scales).toHaveLength(8);
    for (const s of scales) expect(s).toBeLessThanOrEqual(MAX + 1e-6);
    // The optimizer did push it up (it is not just sitting below the clamp): it ends on it.
    expect(scales.at(-1)!).toBeCloseTo(MAX, 5);
    expect(scales.at(-1)!).toBeGreaterThan(MAX - 0.05 + 1e-3);
  });
});
