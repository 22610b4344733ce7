import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { Module } from '../../../core/nn/module.js';
import { Linear } from '../../../core/nn/linear.js';
import { Embedding } from '../../../core/nn/embedding.js';
import { Dropout } from '../../../core/nn/dropout.js';
import { BatchNorm1d } from '../../../core/nn/norm.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import type { LogOptions } from '../../../core/connectors/results.js';
import { CustomClipWrapper, type ImageEncoder, type TextEncoder } from '../../../modules/wrappers/customClipWrapper.js';

/** An image tower with BatchNorm, a text tower with dropout: both react to train/eval. */
class BnImage extends Module implements ImageEncoder {
  readonly fc = this.registerModule('fc', new Linear(12, 10));
  readonly bn = this.registerModule('bn', new BatchNorm1d(10));
  forward(images: Tensor): Tensor {
    return tf.tidy(() => this.bn.forward(this.fc.forward(tf.reshape(images, [images.shape[0]!, -1]))));
  }
}
class DropText extends Module implements TextEncoder {
  readonly emb = this.registerModule('emb', new Embedding(20, 6));
  readonly drop = this.registerModule('drop', new Dropout(0.5));
  forward(ids: Tensor, mask: Tensor): { lastHiddenState: Tensor } {
    return { lastHiddenState: tf.tidy(() => this.drop.forward(tf.mul(this.emb.forward(ids), tf.expandDims(tf.cast(mask, 'float32'), 2)))) };
  }
}

function data(n: number) {
  seedEverything(9);
  return { images: tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', 9), texts: tf.randomUniform([n, 5], 1, 20, 'int32', 10) };
}

class Counting extends CustomClipWrapper {
  teacherUpdates = 0;
  protected override afterOptimizerStep(): void {
    this.teacherUpdates++;
    super.afterOptimizerStep();
  }
}

const make = (o: Record<string, unknown> = {}) =>
  new Counting(new BnImage(), new DropText(), {
    imageDim: 10, textDim: 6, embedDim: 8, avgWordEmbs: true, selfDistillation: true,
    teacher: { imageEncoder: new BnImage(), textEncoder: new DropText() }, lr: 0.05, warmupSteps: 1, ...o,
  });

const quiet = { logger: false, enableProgressBar: false, enableCheckpointing: false, numSanityValSteps: 0 } as const;

describe('CustomClipWrapper train/eval modes', () => {
  it('the EMA teacher and a locked tower stay in eval mode through train()', () => {
    const w = make({ lockImage: true });
    w.train();
    expect(w.teacher!.namedModules().every(([, m]) => !m.training)).toBe(true);
    expect(w.dual.visual.namedModules().every(([, m]) => !m.training)).toBe(true);
    expect(w.dual.transformer.namedModules().every(([, m]) => m.training)).toBe(true);
    // No dropout in the teacher's targets: the same text encodes the same twice.
    const t = data(4).texts;
    const a = w.teacher!.encodeText(t);
    const b = w.teacher!.encodeText(t);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    // The student's unlocked tower still draws dropout masks.
    const c = w.dual.encodeText(t);
    const d = w.dual.encodeText(t);
    expect(Array.from(c.dataSync())).not.toEqual(Array.from(d.dataSync()));
    w.eval();
    expect(w.dual.transformer.namedModules().every(([, m]) => !m.training)).toBe(true);
    tf.dispose([a, b, c, d, t]);
  });

  it('fitting leaves the locked tower\'s and the teacher\'s BatchNorm statistics alone; the EMA runs once per optimizer step', async () => {
    for (const minibatchSize of [0, 2]) {
      seedEverything(4);
      const w = make({ lockImage: true, minibatchSize });
      const bn = w.dual.visual.namedBuffers().map(([n, b]) => [n, Array.from(b.dataSync())] as const);
      const teacherRm = Array.from((w.teacher!.visual as BnImage).bn.runningMean!.dataSync());
      await new Trainer({ ...quiet, maxEpochs: 1, accumulateGradBatches: 2 }).fit(w, { train: new ArrayDataLoader(data(16), { batchSize: 4 }) });
      for (const [n, before] of bn) expect(Array.from(w.dual.visual.namedBuffers().find(([m]) => m === n)![1].dataSync()), n).toEqual(before);
      // The teacher's running statistics move only by the EMA towards the (unchanged) student's.
      expect(Array.from((w.teacher!.visual as BnImage).bn.runningMean!.dataSync())).toEqual(teacherRm);
      expect(w.teacherUpdates).toBe(2); // 4 batches, accumulateGradBatches 2
    }
  });

  it('logs validation metrics with syncDist (ranks validate different shards)', async () => {
    const w = make();
    const seen: Record<string, LogOptions> = {};
    const log = w.log.bind(w);
    w.log = (name: string, value: number | Tensor, options: LogOptions = {}) => {
      if (name.startsWith('val_')) seen[name] = options;
      log(name, value, options);
    };
    const d = data(8);
    await new Trainer({ ...quiet, maxEpochs: 1 }).validate(w, { val: new ArrayDataLoader(d, { batchSize: 4 }) });
    expect(Object.keys(seen).sort()).toEqual(['val_acc', 'val_acc_i2t', 'val_acc_t2i', 'val_loss']);
    for (const o of Object.values(seen)) expect(o.syncDist).toBe(true);
  });
});
