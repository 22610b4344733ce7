import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../core/tf.js';
import { Callback } from '../../core/callback.js';
import { ArrayDataLoader } from '../../core/data.js';
import { Trainer } from '../../core/trainer.js';
import { SGD } from '../../core/optim/sgd.js';
import { StepLR } from '../../core/optim/lrScheduler.js';
import type { LRSchedulerLike, OptimizerConfig, OptimizerLike } from '../../core/types.js';
import { LinearRegressor, regressionData, type XY } from './helpers.js';

/** Records every hook, as Lightning's tests/models/test_hooks.py does. */
const calls: string[] = [];

class Spy extends Callback {}
const cbHooks = [
  'setup', 'teardown', 'onFitStart', 'onFitEnd', 'onSanityCheckStart', 'onSanityCheckEnd', 'onTrainStart', 'onTrainEnd',
  'onTrainEpochStart', 'onTrainEpochEnd', 'onTrainBatchStart', 'onTrainBatchEnd', 'onValidationStart', 'onValidationEnd',
  'onValidationEpochStart', 'onValidationEpochEnd', 'onValidationBatchStart', 'onValidationBatchEnd', 'onBeforeBackward',
  'onAfterBackward', 'onBeforeOptimizerStep', 'onBeforeZeroGrad', 'onSaveCheckpoint',
] as const;
for (const h of cbHooks) {
  (Spy.prototype as unknown as Record<string, () => void>)[h] = () => void calls.push(`Callback.${h}`);
}

class HookedModel extends LinearRegressor {
  override trainingStep(batch: XY): Tensor {
    calls.push('trainingStep');
    return super.trainingStep(batch);
  }
  override validationStep(batch: XY): void {
    calls.push('validationStep');
    super.validationStep(batch);
  }
  override configureOptimizers(): OptimizerConfig {
    calls.push('configureOptimizers');
    const opt = new SGD(this.parameters(), { lr: 0.01 });
    const step = opt.step.bind(opt);
    opt.step = () => {
      calls.push('optimizer.step');
      step();
    };
    return { optimizer: opt, lrScheduler: { scheduler: new StepLR(opt, { stepSize: 1 }), interval: 'step' } };
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
}
const moduleHooks = [
  'onFitStart', 'onFitEnd', 'onTrainStart', 'onTrainEnd', 'onTrainEpochStart', 'onTrainEpochEnd', 'onTrainBatchStart', 'onTrainBatchEnd',
  'onValidationStart', 'onValidationEnd', 'onValidationEpochStart', 'onValidationEpochEnd', 'onValidationBatchStart', 'onValidationBatchEnd',
  'onBeforeBackward', 'onAfterBackward', 'onBeforeOptimizerStep', 'onBeforeZeroGrad',
] as const;
for (const h of moduleHooks) {
  (HookedModel.prototype as unknown as Record<string, () => void>)[h] = () => void calls.push(h);
}

const batch = [
  'Callback.onTrainBatchStart', 'onTrainBatchStart',
  'trainingStep', 'Callback.onBeforeZeroGrad', 'onBeforeZeroGrad', 'optimizerZeroGrad', 'Callback.onBeforeBackward', 'onBeforeBackward',
  'Callback.onAfterBackward', 'onAfterBackward',
  'Callback.onBeforeOptimizerStep', 'onBeforeOptimizerStep', 'configureGradientClipping', 'optimizer.step', 'lrSchedulerStep',
  'Callback.onTrainBatchEnd', 'onTrainBatchEnd',
];
const validation = [
  'Callback.onValidationStart', 'onValidationStart', 'Callback.onValidationEpochStart', 'onValidationEpochStart',
  'Callback.onValidationBatchStart', 'onValidationBatchStart', 'validationStep', 'Callback.onValidationBatchEnd', 'onValidationBatchEnd',
  'Callback.onValidationEpochEnd', 'onValidationEpochEnd', 'Callback.onValidationEnd', 'onValidationEnd',
];

describe('hook order', () => {
  it('matches Lightning for fit (sanity check, 2 batches, validation at epoch end)', async () => {
    const model = new HookedModel();
    const d = regressionData(16, 4);
    const trainer = new Trainer({ callbacks: [new Spy()], maxEpochs: 1, numSanityValSteps: 1, limitValBatches: 1, logger: false, enableProgressBar: false, enableCheckpointing: false });
    calls.length = 0;
    await trainer.fit(model, { train: new ArrayDataLoader(d, { batchSize: 8 }), val: new ArrayDataLoader(d, { batchSize: 8 }) });
    expect(calls).toEqual([
      'Callback.setup', 'configureOptimizers', 'Callback.onFitStart', 'onFitStart',
      'Callback.onSanityCheckStart', ...validation, 'Callback.onSanityCheckEnd',
      'Callback.onTrainStart', 'onTrainStart', 'Callback.onTrainEpochStart', 'onTrainEpochStart',
      ...batch, ...batch,
      ...validation,
      'Callback.onTrainEpochEnd', 'onTrainEpochEnd',
      'Callback.onTrainEnd', 'onTrainEnd', 'Callback.onFitEnd', 'onFitEnd', 'Callback.teardown',
    ]);
  });
});

describe('checkpoint and setup hooks', () => {
  it('go through core/hooks/call.ts, callbacks before the module, on save and on load', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'lc-hooks-'));
    const seen: string[] = [];
    class Named extends Callback {
      override setup(trainer: Trainer): void {
        seen.push(`Callback.setup@${trainer.currentHookName}`);
      }
      override teardown(trainer: Trainer): void {
        seen.push(`Callback.teardown@${trainer.currentHookName}`);
      }
      override onSaveCheckpoint(trainer: Trainer): void {
        seen.push(`Callback.onSaveCheckpoint@${trainer.currentHookName}`);
      }
      override onLoadCheckpoint(trainer: Trainer): void {
        seen.push(`Callback.onLoadCheckpoint@${trainer.currentHookName}`);
      }
    }
    class Saving extends LinearRegressor {
      override onSaveCheckpoint(): void {
        seen.push(`onSaveCheckpoint@${this.trainer!.currentHookName}`);
      }
      override onLoadCheckpoint(): void {
        seen.push(`onLoadCheckpoint@${this.trainer!.currentHookName}`);
      }
    }
    const d = regressionData(16, 4);
    const opts = { maxEpochs: 1, logger: false as const, enableProgressBar: false, enableCheckpointing: false };
    const { ModelCheckpoint } = await import('../../callbacks/modelCheckpoint.js');
    const first = new Trainer({ ...opts, callbacks: [new Named(), new ModelCheckpoint({ dirpath: dir, filename: 'a' })] });
    await first.fit(new Saving(), { train: new ArrayDataLoader(d, { batchSize: 8 }) });
    expect(seen).toEqual(['Callback.setup@setup', 'Callback.onSaveCheckpoint@onSaveCheckpoint', 'onSaveCheckpoint@onSaveCheckpoint', 'Callback.teardown@teardown']);
    seen.length = 0;
    await new Trainer({ ...opts, maxEpochs: 2, callbacks: [new Named()] }).fit(new Saving(), { train: new ArrayDataLoader(d, { batchSize: 8 }) }, { ckptPath: join(dir, 'a.ckpt') });
    expect(seen.slice(0, 3)).toEqual(['Callback.setup@setup', 'Callback.onLoadCheckpoint@onLoadCheckpoint', 'onLoadCheckpoint@onLoadCheckpoint']);
    rmSync(dir, { recursive: true, force: true });
  });
});
