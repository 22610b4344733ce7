import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import { CustomClipWrapper, type ImageEncoder, type TextEncoder } from '../../../modules/wrappers/customClipWrapper.js';

class ToyImage extends Module implements ImageEncoder {
  readonly fc = this.registerModule('fc', new Linear(12, 10));
  forward(images: Tensor): Tensor {
    return tf.tidy(() => this.fc.forward(tf.reshape(images, [images.shape[0]!, -1])));
  }
}
class ToyText extends Module implements TextEncoder {
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  forward(ids: Tensor, mask: Tensor): { lastHiddenState: Tensor } {
    return { lastHiddenState: tf.tidy(() => tf.mul(this.emb.forward(ids), tf.expandDims(tf.cast(mask, 'float32'), 2))) };
  }
}

function data(n: number, seed: number) {
  seedEverything(seed);
  return { images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', seed), texts: tf.randomUniform([n, 5], 1, 20, 'int32', seed + 1) };
}

const make = (o: Record<string, unknown> = {}) =>
  new CustomClipWrapper(new ToyImage(), new ToyText(), {
    imageDim: 10,
    textDim: 6,
    embedDim: 8,
    avgWordEmbs: true,
    padTokenId: 0,
    selfDistillation: true,
    teacher: { imageEncoder: new ToyImage(), textEncoder: new ToyText() },
    klCoeff: 1,
    lr: 0.05,
    encoderLr: 0.01,
    warmupSteps: 1,
    ...o,
  });

describe('CustomClipWrapper', () => {
  it('gradient caching with self-distillation equals the full-batch gradient', async () => {
    seedEverything(4);
    const a = make();
    const b = make({ minibatchSize: 2 });
    b.loadStateDict(a.stateDict());
    const batch = data(6, 3);
    const ra = await a.computeGradients(batch);
    const rb = await b.computeGradients(batch);
    expect(rb.loss.dataSync()[0]).toBeCloseTo(ra.loss.dataSync()[0]!, 5);
    const gb = new Map(b.namedParameters().map(([n, p]) => [n, p.grad]));
    let compared = 0;
    for (const [n, p] of a.namedParameters()) {
      if (!p.requiresGrad) {
        expect(n.startsWith('teacher.')).toBe(true);
        expect(p.grad).toBeNull();
        continue;
      }
      const x = p.grad!.dataSync();
      const y = gb.get(n)!.dataSync();
      for (let i = 0; i < x.length; i++) expect(y[i]).toBeCloseTo(x[i]!, 5);
      compared++;
    }
    expect(compared).toBe(7); // fc w/b, emb, 2 projections, logit_scale, sink_temp
  });

  it('the EMA teacher update is exact', () => {
    seedEverything(5);
    const w = make({ teacherDecay: 0.9 });
    const s = w.dual.imageProjection.weight.variable;
    const t = w.teacher!.imageProjection.weight.variable;
    expect(Array.from(t.dataSync())).toEqual(Array.from(s.dataSync()));
    const t0 = Array.from(t.dataSync());
    s.assign(tf.add(s, 1));
    const s1 = Array.from(s.dataSync());
    w.updateTeacher();
    Array.from(t.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(0.9 * t0[i]! + 0.1 * s1[i]!, 6));
  });

  it('fine-tunes: loss goes down; locked towers stay fixed; separate learning rates', async () => {
    seedEverything(6);
    const w = make({ lockImage: true });
    const before = Array.from(w.dual.visual.parameters()[0]!.variable.dataSync());
    const losses: number[] = [];
    w.onTrainBatchEnd = (o) => void losses.push(o.loss!);
    const loader = new ArrayDataLoader(data(16, 8), { batchSize: 8, shuffle: true, seed: 1 });
    await new Trainer({ maxEpochs: 25, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(w, { train: loader });
    expect(Array.from(w.dual.visual.parameters()[0]!.variable.dataSync())).toEqual(before);
    expect(losses.slice(-4).reduce((x, y) => x + y) / 4).toBeLessThan(0.8 * (losses.slice(0, 4).reduce((x, y) => x + y) / 4));
    const cfg = w.configureOptimizers() as unknown as { optimizer: { paramGroups: Array<{ initialLr: number; params: unknown[] }> } };
    // Towers (text: decay group only, the image tower is frozen) at encoderLr; heads at lr.
    expect(cfg.optimizer.paramGroups.map((g) => g.initialLr).sort()).toEqual([0.01, 0.05, 0.05]);
  });

  it('needs a teacher for self-distillation', () => {
    expect(() => make({ teacher: undefined })).toThrow(/self_distillation/);
  });
});
