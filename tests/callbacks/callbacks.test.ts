import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { tf } from '../../core/tf.js';
import { ArrayDataLoader } from '../../core/data.js';
import { Trainer } from '../../core/trainer.js';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { SGD } from '../../core/optim/sgd.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { EarlyStopping, EMA, LearningRateMonitor, ModelCheckpoint, ProgressBar } from '../../callbacks/index.js';
import { TensorBoardLogger, CSVLogger } from '../../loggers/index.js';
import { LinearRegressor, loaders, regressionData, type XY } from '../core/helpers.js';
import { readEventFile, eventFileIn } from '../loggers/eventFile.js';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
const quiet = { enableProgressBar: false, logger: false as const, numSanityValSteps: 0, defaultRootDir: tmp('lc-cb-root-') };

/** Logs a scripted validation metric per epoch, to drive monitoring callbacks. */
class Scripted extends LinearRegressor {
  constructor(private readonly script: number[]) {
    super();
  }
  override validationStep(_batch: XY): void {
    this.log('score', this.script[this.currentEpoch] ?? 0);
  }
}

describe('ModelCheckpoint', () => {
  it('keeps the top k by the monitored metric, with correct best/kth bookkeeping', async () => {
    const dir = tmp('lc-ckpt-');
    const script = [5, 3, 4, 1, 2, 6];
    const cb = new ModelCheckpoint({ dirpath: dir, monitor: 'score', mode: 'min', saveTopK: 2, saveLast: true, filename: '{epoch}-{score:.1f}' });
    const trainer = new Trainer({ ...quiet, callbacks: [cb], maxEpochs: 6, limitTrainBatches: 1 });
    await trainer.fit(new Scripted(script), loaders(16, 8));
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(['epoch=3-score=1.0.ckpt', 'epoch=4-score=2.0.ckpt', 'last.ckpt']);
    expect(cb.bestModelPath).toBe(path.join(dir, 'epoch=3-score=1.0.ckpt'));
    expect(cb.bestModelScore).toBe(1);
    expect(cb.kthBestModelPath).toBe(path.join(dir, 'epoch=4-score=2.0.ckpt'));
    expect(Object.values(cb.bestKModels).sort()).toEqual([1, 2]);
    const last = await loadCheckpointFile(path.join(dir, 'last.ckpt'));
    expect((last.json as { epoch: number }).epoch).toBe(5);
    expect(Object.keys(last.tensors)).toContain('state_dict.fc.weight');
    tf.dispose(Object.values(last.tensors));
  });

  it('max mode, saveTopK -1 keeps all; a missing monitor is a clear error', async () => {
    const dir = tmp('lc-ckpt-');
    const cb = new ModelCheckpoint({ dirpath: dir, monitor: 'score', mode: 'max', saveTopK: -1 });
    await new Trainer({ ...quiet, callbacks: [cb], maxEpochs: 3, limitTrainBatches: 1 }).fit(new Scripted([1, 3, 2]), loaders(16, 8));
    expect(fs.readdirSync(dir)).toHaveLength(3);
    expect(cb.bestModelScore).toBe(3);
    const bad = new ModelCheckpoint({ dirpath: tmp('lc-ckpt-'), monitor: 'nope' });
    await expect(new Trainer({ ...quiet, callbacks: [bad], maxEpochs: 1, limitTrainBatches: 1 }).fit(new Scripted([1]), loaders(16, 8))).rejects.toThrow(
      /monitor="nope".*HINT: Did you call `this.log\("nope", value\)`/,
    );
  });

  it("resumes with ckptPath 'last' from an earlier run's last.ckpt", async () => {
    const root = tmp('lc-root-');
    const m1 = new LinearRegressor();
    await new Trainer({ ...quiet, defaultRootDir: root, logger: true, maxEpochs: 2, callbacks: [new ModelCheckpoint({ saveLast: true })] }).fit(m1, loaders(32, 8));
    const m2 = new LinearRegressor();
    const t2 = new Trainer({ ...quiet, defaultRootDir: root, logger: true, maxEpochs: 3, callbacks: [new ModelCheckpoint({ saveLast: true })] });
    await t2.fit(m2, loaders(32, 8), { ckptPath: 'last' });
    expect(m2.losses).toHaveLength(4); // only the third epoch ran
    expect(t2.globalStep).toBe(12);
  });
});

describe('EarlyStopping', () => {
  it('stops after `patience` checks without improvement beyond minDelta', async () => {
    const es = new EarlyStopping({ monitor: 'score', patience: 2, minDelta: 0.1 });
    const trainer = new Trainer({ ...quiet, enableCheckpointing: false, callbacks: [es], maxEpochs: 20, limitTrainBatches: 1 });
    await trainer.fit(new Scripted([5, 4, 3.95, 3.92, 1, 1]), loaders(16, 8));
    expect(trainer.currentEpoch).toBe(4); // epochs 0..3 ran; stopped at epoch 3
    expect(es.bestScore).toBe(4);
    expect(es.stoppedEpoch).toBe(3);
  });
  it('rejects a bad mode', () => {
    expect(() => new EarlyStopping({ monitor: 'x', mode: 'up' as 'min' })).toThrow(/mode="up"/);
  });
});

describe('EMA', () => {
  it('tracks the exact average, validates with it, restores the weights, and resumes from a checkpoint', async () => {
    const dir = tmp('lc-ema-');
    const decay = 0.5;
    const ema = new EMA({ decay });
    const model = new LinearRegressor(4, 0.1);
    const expected = new Map<string, Float32Array>();
    let valWeight: number[] = [];
    const w0 = Array.from(model.fc.weight.variable.dataSync());
    const history: number[][] = [];
    const probe = new (class extends LearningRateMonitor {
      override onTrainBatchEnd(): void {
        history.push(Array.from(model.fc.weight.variable.dataSync()));
      }
    })();
    model.onValidationStart = () => {
      valWeight = Array.from(model.fc.weight.variable.dataSync());
    };
    const ckpt = new ModelCheckpoint({ dirpath: dir, saveLast: true });
    await new Trainer({ ...quiet, callbacks: [probe, ema, ckpt], maxEpochs: 1, limitValBatches: 1 }).fit(model, loaders(32, 8));
    // Independent recomputation: s0 = w0; s ← d·s + (1 − d)·w after each of the 4 steps.
    let s = w0.slice();
    for (const w of history) s = s.map((v, i) => decay * v + (1 - decay) * w[i]!);
    const emaW = Array.from(ema.weights.get('fc.weight')!.dataSync());
    emaW.forEach((v, i) => expect(v).toBeCloseTo(s[i]!, 5));
    // Validation ran with the EMA weights, and training weights came back afterwards.
    valWeight.forEach((v, i) => expect(v).toBeCloseTo(s[i]!, 5));
    const after = Array.from(model.fc.weight.variable.dataSync());
    after.forEach((v, i) => expect(v).toBeCloseTo(history[history.length - 1]![i]!, 6));
    expect(after[0]).not.toBeCloseTo(s[0]!, 4);
    expected.set('w', new Float32Array(emaW));

    const ema2 = new EMA({ decay });
    const m2 = new LinearRegressor(4, 0.1);
    await new Trainer({ ...quiet, callbacks: [ema2], maxEpochs: 1, limitValBatches: 0 }).fit(m2, loaders(32, 8), { ckptPath: path.join(dir, 'last.ckpt') });
    Array.from(ema2.weights.get('fc.weight')!.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected.get('w')![i]!, 6));
  });
});

describe('LearningRateMonitor, ProgressBar and loggers through the Trainer', () => {
  it('logs the schedule, prints plain progress lines, writes decodable event files and CSV', async () => {
    const root = tmp('lc-logs-');
    const lrm = new LearningRateMonitor({ loggingInterval: 'step' });
    let out = '';
    const stream = new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } });
    const bar = new ProgressBar({ stream, plainIntervalSeconds: 0 });
    const tb = new TensorBoardLogger({ saveDir: root });
    const csv = new CSVLogger({ saveDir: root, name: 'csv' });
    const model = new LinearRegressor(4, 0.1, (m) => {
      const optimizer = new SGD(m.parameters(), { lr: 0.1 });
      return { optimizer, lrScheduler: { scheduler: new CosineWarmupScheduler(optimizer, { warmupSteps: 2, totalSteps: 8 }), interval: 'step' } };
    });
    const trainer = new Trainer({ callbacks: [lrm, bar], logger: [tb, csv], maxEpochs: 2, logEveryNSteps: 1, numSanityValSteps: 0, enableCheckpointing: false });
    await trainer.fit(model, { train: new ArrayDataLoader(regressionData(32, 4), { batchSize: 8 }), val: new ArrayDataLoader(regressionData(8, 4), { batchSize: 8 }) });
    expect(lrm.history['lr-SGD']!.map(([, v]) => Number(v.toFixed(6)))).toEqual([0.05, 0.1, 0.1, 0.093301, 0.075, 0.05, 0.025, 0.006699]);
    expect(out).toMatch(/Epoch 0: 100% 4\/4 \[\d\d:\d\d<\d\d:\d\d, [\d.]+(it\/s|s\/it)\] train_loss=\d+\.\d{3}/);
    expect(out).toMatch(/Validation epoch 1: val_loss=/);
    const events = readEventFile(eventFileIn(tb.logDir));
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    const losses = events.flatMap((e) => e.values.filter((v) => v.string(1) === 'train_loss').map((v) => [e.step, v.float(2)!]));
    expect(losses.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    losses.forEach(([, v], i) => expect(v).toBeCloseTo(model.losses[i]!, 5));
    expect(events.some((e) => e.values.some((v) => v.string(1) === 'val_loss'))).toBe(true);
    const csvText = fs.readFileSync(csv.metricsFilePath, 'utf8');
    expect(csvText.split('\n')[0]).toMatch(/^step,/);
    expect(csvText).toContain('val_loss');
    expect(fs.existsSync(path.join(tb.logDir, 'hparams.yaml'))).toBe(true);
  });
});
