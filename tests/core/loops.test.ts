import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import { SGD } from '../../core/optim/sgd.js';
import { StepLR } from '../../core/optim/lrScheduler.js';
import type { Logger } from '../../core/logger.js';
import type { OptimizerConfig } from '../../core/types.js';
import { LinearRegressor, loaders, type XY } from './helpers.js';

const quiet = { enableProgressBar: false, logger: false as const, enableCheckpointing: false, numSanityValSteps: 0 };

/** Counts validation runs and the training batches seen before each. */
class Counting extends LinearRegressor {
  valAt: number[] = [];
  override onValidationStart(): void {
    if (!this.trainer!.sanityChecking) this.valAt.push(this.trainer!.globalStep);
  }
}

describe('validation scheduling', () => {
  it('valCheckInterval as a fraction, as a batch count, and checkValEveryNEpoch', async () => {
    const a = new Counting();
    await new Trainer({ ...quiet, maxEpochs: 2, valCheckInterval: 0.25 }).fit(a, loaders(64, 8)); // 8 batches/epoch → every 2
    expect(a.valAt).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    const b = new Counting();
    await new Trainer({ ...quiet, maxEpochs: 1, valCheckInterval: 3 }).fit(b, loaders(64, 8));
    expect(b.valAt).toEqual([3, 6]);
    const c = new Counting();
    await new Trainer({ ...quiet, maxEpochs: 4, checkValEveryNEpoch: 2 }).fit(c, loaders(64, 8));
    expect(c.valAt).toEqual([16, 32]);
  });
});

/** A logger that records what it receives. */
class Recorder implements Pick<Logger, 'logMetrics'> {
  rows: Array<[number, Record<string, number>]> = [];
  name = 'rec';
  version = 0;
  logDir = '/tmp';
  logMetrics(m: Record<string, number>, step: number): void {
    this.rows.push([step, { ...m }]);
  }
  logHyperparams(): void {}
  save(): void {}
  finalize(): void {}
}

describe('logging', () => {
  it('sends step metrics every logEveryNSteps and epoch means weighted by batchSize', async () => {
    const rec = new Recorder();
    class Logged extends LinearRegressor {
      override trainingStep(batch: XY): Tensor {
        const loss = super.trainingStep(batch);
        this.log('both', this.globalStep, { onStep: true, onEpoch: true, reduceFx: 'max' });
        return loss;
      }
      override validationStep(batch: XY): void {
        this.log('v', batch.x.shape[0]!, { batchSize: batch.x.shape[0]! });
      }
    }
    const model = new Logged();
    const x = tf.zeros([12, 4]);
    const y = tf.zeros([12, 1]);
    const { ArrayDataLoader } = await import('../../core/data.js');
    await new Trainer({ ...quiet, logger: rec as unknown as Logger, maxEpochs: 1, logEveryNSteps: 2 }).fit(model, {
      train: loaders(32, 8).train,
      val: new ArrayDataLoader({ x, y }, { batchSize: 8 }), // batches of 8 and 4: weighted mean (8·8 + 4·4)/12
    });
    const stepRows = rec.rows.filter(([, m]) => 'train_loss' in m);
    expect(stepRows.map(([s]) => s)).toEqual([2, 4]);
    expect(stepRows[0]![1].both_step).toBe(1); // logged before the step counter moved
    const epochRow = rec.rows.find(([, m]) => 'both_epoch' in m)!;
    expect(epochRow[1].both_epoch).toBe(3);
    const valRow = rec.rows.find(([, m]) => 'v' in m)!;
    expect(valRow[1].v).toBeCloseTo((8 * 8 + 4 * 4) / 12, 6);
  });

  it('refuses log() where nothing would aggregate it', async () => {
    class Bad extends LinearRegressor {
      override onFitStart(): void {
        this.log('x', 1);
      }
    }
    await expect(new Trainer({ ...quiet, maxSteps: 1 }).fit(new Bad(), loaders(16, 8))).rejects.toThrow(/log\("x"\).*onFitStart/);
  });
});

describe('manual optimization', () => {
  it('two optimizers stepped by an async trainingStep; each step counts; schedulers are the module\'s to step', async () => {
    class TwoOpts extends LinearRegressor {
      override automaticOptimization = false;
      // @ts-expect-error an async (manual-optimization) trainingStep: LightningModule allows it, LinearRegressor's own is synchronous
      override async trainingStep(batch: XY): Promise<Tensor> {
        const [wOpt, bOpt] = this.optimizers();
        const loss = this.manualBackward(() => tf.mean(tf.square(tf.sub(this.fc.forward(batch.x), batch.y))));
        await wOpt!.step();
        await bOpt!.step();
        wOpt!.zeroGrad();
        bOpt!.zeroGrad();
        this.lrSchedulers()[0]!.step();
        this.log('loss', loss);
        return loss;
      }
      override configureOptimizers(): OptimizerConfig {
        const w = new SGD([this.fc.weight], { lr: 0.1 });
        const b = new SGD([this.fc.bias!], { lr: 0.1 });
        return [[w, b], [new StepLR(w, { stepSize: 1, gamma: 0.5 })]];
      }
    }
    const m = new TwoOpts();
    const t = new Trainer({ ...quiet, maxEpochs: 1, limitTrainBatches: 3 });
    await t.fit(m, loaders(32, 8));
    expect(t.globalStep).toBe(6); // Lightning counts every optimizer.step()
    expect(t.callbackMetrics.loss).toBeGreaterThan(0);
  });
});
