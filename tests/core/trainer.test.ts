import { describe, expect, it } from 'vitest';
import { tf } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import { seedEverything } from '../../core/random.js';
import { LinearRegressor, loaders } from './helpers.js';

const quiet = { enableProgressBar: false, logger: false as const, enableCheckpointing: false };

describe('Trainer.fit', () => {
  it('trains a toy model to convergence', async () => {
    seedEverything(0);
    const model = new LinearRegressor(4, 0.2);
    const data = loaders(64, 8);
    const trainer = new Trainer({ ...quiet, maxEpochs: 15 });
    await trainer.fit(model, data);
    const first = model.losses.slice(0, 8).reduce((a, b) => a + b) / 8;
    const last = model.losses.slice(-8).reduce((a, b) => a + b) / 8;
    expect(trainer.globalStep).toBe(15 * 8);
    expect(trainer.currentEpoch).toBe(15);
    expect(last).toBeLessThan(first * 0.01);
    expect(trainer.callbackMetrics.val_loss).toBeLessThan(0.05);
  });

  it('counts sanity, limit and fastDevRun batches', async () => {
    const model = new LinearRegressor();
    let valBatches = 0;
    model.onValidationBatchStart = () => void valBatches++;
    const trainer = new Trainer({ ...quiet, maxEpochs: 2, limitTrainBatches: 3, limitValBatches: 2, numSanityValSteps: 1 });
    await trainer.fit(model, loaders(64, 8));
    expect(trainer.globalStep).toBe(6);
    expect(valBatches).toBe(1 + 2 * 2);

    const m2 = new LinearRegressor();
    let v2 = 0;
    m2.onValidationBatchStart = () => void v2++;
    const t2 = new Trainer({ ...quiet, fastDevRun: 2, maxEpochs: 5 });
    await t2.fit(m2, loaders(64, 8));
    expect(t2.globalStep).toBe(2);
    expect(v2).toBe(2);

    const m3 = new LinearRegressor();
    const t3 = new Trainer({ ...quiet, maxEpochs: 1, limitTrainBatches: 0.5, limitValBatches: 0 });
    await t3.fit(m3, loaders(64, 8));
    expect(t3.globalStep).toBe(4);
  });

  it('stops at maxSteps across epochs', async () => {
    const model = new LinearRegressor();
    const trainer = new Trainer({ ...quiet, maxSteps: 11, numSanityValSteps: 0 });
    await trainer.fit(model, loaders(64, 8));
    expect(trainer.globalStep).toBe(11);
    // As Lightning: the interrupted epoch still ends (its epoch-end hooks run), so the counter moves on.
    expect(trainer.currentEpoch).toBe(2);
  });

  it('keeps tf.memory().numTensors flat over 200 steps', async () => {
    const model = new LinearRegressor();
    const data = loaders(64, 8);
    const t1 = new Trainer({ ...quiet, maxSteps: 20 });
    await t1.fit(model, data);
    const before = tf.memory().numTensors;
    const t2 = new Trainer({ ...quiet, maxSteps: 200 });
    await t2.fit(model, data);
    expect(t2.globalStep).toBe(200);
    // Same tensors alive after 20 or 200 more steps: the optimizer state, the parameters, the data.
    expect(tf.memory().numTensors).toBe(before);
  });

  it('validate, test and predict return metrics and outputs', async () => {
    const model = new LinearRegressor();
    const data = loaders(64, 8);
    const trainer = new Trainer({ ...quiet });
    const val = await trainer.validate(model, { val: data.val });
    expect(val.val_loss).toBeGreaterThan(0);
    const test = await trainer.test(model, { test: data.val });
    expect(test.test_loss).toBeCloseTo(val.val_loss!, 5);
    const preds = await trainer.predict(model, { predict: data.val });
    expect(preds).toHaveLength(2);
    expect((preds[0] as number[]).length).toBe(8);
  });

  it('rejects bad options with the option named', () => {
    expect(() => new Trainer({ maxSteps: -3 })).toThrow(/`maxSteps` must be an integer ≥ -1, got -3/);
    expect(() => new Trainer({ gradientClipAlgorithm: 'foo' as 'norm' })).toThrow(/gradientClipAlgorithm/);
    expect(() => new Trainer({ limitTrainBatches: 2.5 })).toThrow(/limitTrainBatches/);
    expect(() => new Trainer({ precision: '16-mixed' })).toThrow(/float16/);
  });
});
