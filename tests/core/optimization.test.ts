import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../core/tf.js';
import { ArrayDataLoader } from '../../core/data.js';
import { Trainer } from '../../core/trainer.js';
import { seedEverything } from '../../core/random.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { Dropout } from '../../core/nn/dropout.js';
import { ModelCheckpoint } from '../../callbacks/modelCheckpoint.js';
import type { OptimizerLike } from '../../core/types.js';
import { LinearRegressor, regressionData, type XY } from './helpers.js';

const quiet = { enableProgressBar: false, logger: false as const, enableCheckpointing: false, numSanityValSteps: 0 };

function weights(m: LinearRegressor): number[] {
  return [...m.fc.weight.variable.dataSync(), ...m.fc.bias!.variable.dataSync()];
}

describe('optimization through the Trainer', () => {
  it('accumulating k batches equals one k-times larger batch', async () => {
    const data = regressionData(32, 4, 3);
    seedEverything(7);
    const a = new LinearRegressor(4, 0.3);
    seedEverything(7);
    const b = new LinearRegressor(4, 0.3);
    expect(weights(a)).toEqual(weights(b));
    await new Trainer({ ...quiet, maxSteps: 2, accumulateGradBatches: 4 }).fit(a, { train: new ArrayDataLoader(data, { batchSize: 4 }) });
    await new Trainer({ ...quiet, maxSteps: 2 }).fit(b, { train: new ArrayDataLoader(data, { batchSize: 16 }) });
    const wa = weights(a);
    const wb = weights(b);
    wa.forEach((v, i) => expect(v).toBeCloseTo(wb[i]!, 5));
    // And it really moved: not a trivially equal no-op.
    seedEverything(7);
    const c = new LinearRegressor(4, 0.3);
    expect(Math.abs(weights(c)[0]! - wa[0]!)).toBeGreaterThan(1e-3);
  });

  it('gradient clipping by norm bounds the global norm at the optimizer step', async () => {
    const norms: number[] = [];
    class Probe extends LinearRegressor {
      override async optimizerStep(_e: number, _b: number, opt: OptimizerLike, closure: () => Promise<void>): Promise<void> {
        await closure();
        const sq = opt.paramGroups.flatMap((g) => g.params).reduce((s, p) => s + tf.tidy(() => tf.sum(tf.square(p.grad!)).dataSync()[0]!), 0);
        norms.push(Math.sqrt(sq));
        opt.step();
      }
    }
    const m = new Probe(4, 0.1);
    await new Trainer({ ...quiet, maxSteps: 5, gradientClipVal: 0.05 }).fit(m, { train: new ArrayDataLoader(regressionData(40, 4), { batchSize: 8 }) });
    expect(norms).toHaveLength(5);
    for (const n of norms) expect(n).toBeLessThanOrEqual(0.05 + 1e-5);
    // Unclipped gradients of this problem are far larger.
    const free: number[] = [];
    class Free extends Probe {}
    const f = new Free(4, 0.1);
    norms.length = 0;
    await new Trainer({ ...quiet, maxSteps: 2 }).fit(f, { train: new ArrayDataLoader(regressionData(40, 4), { batchSize: 8 }) });
    free.push(...norms);
    expect(Math.max(...free)).toBeGreaterThan(0.5);
  });

  it('clipping by value bounds every gradient element', async () => {
    let maxAbs = 0;
    class Probe extends LinearRegressor {
      override async optimizerStep(_e: number, _b: number, opt: OptimizerLike, closure: () => Promise<void>): Promise<void> {
        await closure();
        for (const p of opt.paramGroups.flatMap((g) => g.params)) maxAbs = Math.max(maxAbs, ...Array.from(p.grad!.dataSync()).map(Math.abs));
        opt.step();
      }
    }
    await new Trainer({ ...quiet, maxSteps: 3, gradientClipVal: 0.01, gradientClipAlgorithm: 'value' }).fit(new Probe(), {
      train: new ArrayDataLoader(regressionData(40, 4), { batchSize: 8 }),
    });
    expect(maxAbs).toBeGreaterThan(0);
    expect(maxAbs).toBeLessThanOrEqual(0.01 + 1e-7);
  });
});

class DropoutRegressor extends LinearRegressor {
  readonly drop = this.registerModule('drop', new Dropout(0.3));
  override trainingStep(batch: XY): tf.Tensor {
    const loss = tf.mean(tf.square(tf.sub(this.fc.forward(this.drop.forward(batch.x)), batch.y)));
    this.log('train_loss', loss);
    this.losses.push(loss.dataSync()[0]!);
    return loss;
  }
}

describe('resuming', () => {
  const makeOpt = (m: LinearRegressor) => {
    const optimizer = new AdamW(m.parameters(), { lr: 0.05, weightDecay: 0.1 });
    return { optimizer, lrScheduler: { scheduler: new CosineWarmupScheduler(optimizer, { warmupSteps: 3, totalSteps: 14 }), interval: 'step' as const } };
  };

  it('a resumed run reproduces the uninterrupted losses exactly (mid-epoch, dropout, AdamW, schedule)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-resume-'));
    const data = regressionData(48, 4, 5);
    const loader = () => new ArrayDataLoader(data, { batchSize: 8, shuffle: true, seed: 11 });
    seedEverything(1);
    const full = new DropoutRegressor(4, 0.05, makeOpt);
    const ckpt = new ModelCheckpoint({ dirpath: dir, everyNTrainSteps: 4, saveTopK: -1 });
    await new Trainer({ ...quiet, enableCheckpointing: true, callbacks: [ckpt], maxSteps: 14, seed: 1 }).fit(full, { train: loader() });
    expect(full.losses).toHaveLength(14);
    const files = fs.readdirSync(dir).sort();
    expect(files).toContain('epoch=0-step=4.ckpt');
    expect(files).toContain('epoch=1-step=8.ckpt');

    seedEverything(999); // a different init: everything must come from the checkpoint
    const resumed = new DropoutRegressor(4, 0.05, makeOpt);
    await new Trainer({ ...quiet, maxSteps: 14, seed: 999 }).fit(resumed, { train: loader() }, { ckptPath: path.join(dir, 'epoch=0-step=4.ckpt') });
    expect(resumed.losses).toEqual(full.losses.slice(4));

    const resumed2 = new DropoutRegressor(4, 0.05, makeOpt);
    await new Trainer({ ...quiet, maxSteps: 14 }).fit(resumed2, { train: loader() }, { ckptPath: path.join(dir, 'epoch=1-step=8.ckpt') });
    expect(resumed2.losses).toEqual(full.losses.slice(8));
    expect(weights(resumed2)).toEqual(weights(full));
  });

  it('same seed, same backend: the same losses', async () => {
    const run = async () => {
      const m = new DropoutRegressor(4, 0.05, makeOpt);
      await new Trainer({ ...quiet, maxSteps: 6, seed: 3 }).fit(m, { train: new ArrayDataLoader(regressionData(48, 4, 5), { batchSize: 8, shuffle: true, seed: 2 }) });
      return m.losses;
    };
    seedEverything(3);
    const a = await run();
    seedEverything(3);
    const b = await run();
    expect(a).toEqual(b);
    expect(new Set(a).size).toBeGreaterThan(1);
  });
});
