import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import { ArrayDataLoader } from '../../core/data.js';
import { LightningModule, type GradientContext } from '../../core/module.js';
import { Linear } from '../../core/nn/index.js';
import { SGD } from '../../core/optim/sgd.js';
import type { OptimizerConfig } from '../../core/types.js';
import type { TrainingStepOutput } from '../../core/types.js';
import { LinearRegressor, regressionData, type XY } from './helpers.js';

const quiet = { logger: false, enableProgressBar: false, enableCheckpointing: false, numSanityValSteps: 0 } as const;

const mse = (m: LinearRegressor, b: XY): Tensor => tf.mean(tf.square(tf.sub(m.fc.forward(b.x), b.y)));

/** Computes its gradients in two tapes around an await (as gradient caching does). */
class SplitGradients extends LinearRegressor {
  override async trainingGradients(batch: XY, _i: number, grad: GradientContext): Promise<TrainingStepOutput> {
    const n = batch.x.shape[0]!;
    const half = n / 2;
    const loss = tf.tidy(() => mse(this, batch));
    grad.beforeBackward(loss);
    await Promise.resolve();
    // mean over n = (sum over the first half + sum over the second half) / n
    for (const s of [0, half]) {
      const part = { x: tf.slice(batch.x, s, half), y: tf.slice(batch.y, s, half) };
      grad.backward(() => tf.div(tf.sum(tf.square(tf.sub(this.fc.forward(part.x), part.y))), n)).dispose();
      tf.dispose([part.x, part.y]);
    }
    this.log('train_loss', loss);
    return loss;
  }
}

async function weightsAfter(m: LinearRegressor, accumulate: number): Promise<number[]> {
  const d = regressionData(32, 4, 5);
  await new Trainer({ ...quiet, maxEpochs: 2, accumulateGradBatches: accumulate }).fit(m, { train: new ArrayDataLoader(d, { batchSize: 8 }) });
  return Array.from(m.fc.weight.variable.dataSync());
}

describe('trainingGradients (a module computing its own gradients under automatic optimization)', () => {
  it('trains exactly as trainingStep on the tape, with accumulation', async () => {
    for (const accumulate of [1, 3]) {
      const a = new LinearRegressor(4, 0.1);
      const b = new SplitGradients(4, 0.1);
      b.loadStateDict(a.stateDict());
      const wa = await weightsAfter(a, accumulate);
      const wb = await weightsAfter(b, accumulate);
      wb.forEach((v, i) => expect(v).toBeCloseTo(wa[i]!, 6));
      expect(b.losses).toHaveLength(0); // its trainingStep (which records losses) never ran
    }
  });

  it('rejects a loss returned without any gradient', async () => {
    class NoBackward extends LinearRegressor {
      override async trainingGradients(batch: XY): Promise<TrainingStepOutput> {
        return tf.tidy(() => mse(this, batch));
      }
    }
    await expect(weightsAfter(new NoBackward(), 1)).rejects.toThrow(/without adding any gradient/);
  });
});

describe('manual optimization and Trainer flags it cannot honour', () => {
  // Its own class (not LinearRegressor's subclass): an async trainingStep has another signature.
  class Manual extends LightningModule<XY> {
    override automaticOptimization = false;
    readonly fc = this.registerModule('fc', new Linear(4, 1));
    configureOptimizers(): OptimizerConfig {
      return new SGD(this.parameters(), { lr: 0.1 });
    }
    async trainingStep(batch: XY): Promise<Tensor> {
      const [opt] = this.optimizers();
      opt!.zeroGrad();
      const loss = this.manualBackward(() => tf.mean(tf.square(tf.sub(this.fc.forward(batch.x), batch.y))));
      await opt!.step();
      return loss;
    }
  }
  const fit = (o: Record<string, unknown>) =>
    new Trainer({ ...quiet, maxEpochs: 1, ...o }).fit(new Manual(), { train: new ArrayDataLoader(regressionData(8, 4), { batchSize: 4 }) });

  it('accumulateGradBatches is an error, not ignored', async () => {
    await expect(fit({ accumulateGradBatches: 2 })).rejects.toThrow(/accumulation is not supported for manual optimization.*--accumulate_grad_batches/);
  });

  it('gradientClipVal is an error, not ignored', async () => {
    await expect(fit({ gradientClipVal: 1 })).rejects.toThrow(/clipping is not supported for manual optimization.*--gradient_clip_val/);
  });

  it('without those flags it runs', async () => {
    await expect(fit({})).resolves.toBeUndefined();
  });
});
