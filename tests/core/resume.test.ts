import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelCheckpoint } from '../../callbacks/modelCheckpoint.js';
import { ArrayDataLoader } from '../../core/data.js';
import type { DataLoader } from '../../core/datamodule.js';
import { StepLR } from '../../core/optim/lrScheduler.js';
import { SGD } from '../../core/optim/sgd.js';
import { Trainer } from '../../core/trainer.js';
import { LinearRegressor, regressionData, type XY } from './helpers.js';

const quiet = { enableProgressBar: false, logger: false as const, numSanityValSteps: 0 };

/** A loader of unknown length: validation then runs after the epoch's batches, before its schedulers step. */
function unsized(loader: ArrayDataLoader<'x' | 'y'>): DataLoader<XY> {
  return { [Symbol.asyncIterator]: () => loader[Symbol.asyncIterator]() as AsyncIterator<XY>, setEpoch: (e: number) => loader.setEpoch(e) };
}

/** Halves the lr every other epoch (an epoch scheduler with frequency 2); records the lr each epoch starts with. */
class EveryOtherEpoch extends LinearRegressor {
  lrAtEpochStart: Record<number, number> = {};
  constructor() {
    super(4, 0.1, (m) => {
      const opt = new SGD(m.parameters(), { lr: 0.1 });
      return { optimizer: opt, lrScheduler: { scheduler: new StepLR(opt, { stepSize: 1, gamma: 0.5 }), interval: 'epoch', frequency: 2 } };
    });
  }
  override onTrainEpochStart(): void {
    const opt = this.trainer!.optimizers[0] as SGD;
    this.lrAtEpochStart[this.trainer!.currentEpoch] = opt.paramGroups[0]!.lr as number;
  }
}

function data(): { train: DataLoader<XY>; val: ArrayDataLoader<'x' | 'y'> } {
  return { train: unsized(new ArrayDataLoader(regressionData(32, 4, 1), { batchSize: 8, shuffle: true, seed: 1 })), val: new ArrayDataLoader(regressionData(8, 4, 2), { batchSize: 8 }) };
}

describe('resuming from a checkpoint saved at the end of an epoch', () => {
  it('steps epoch schedulers with the same count as an uninterrupted run (epoch + 1)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-resume-'));
    const straight = new EveryOtherEpoch();
    await new Trainer({ ...quiet, maxEpochs: 3, enableCheckpointing: false }).fit(straight, data());
    // frequency 2: stepped after epochs 2 and 4 (counts 2, 4), so epochs 0 and 1 share the base lr.
    expect(straight.lrAtEpochStart).toEqual({ 0: 0.1, 1: 0.1, 2: 0.05 });

    // The first run saves at validation, which (unknown loader length) runs after the
    // epoch's batches and before the epoch's schedulers step.
    const first = new EveryOtherEpoch();
    await new Trainer({ ...quiet, maxEpochs: 1, callbacks: [new ModelCheckpoint({ dirpath: dir, filename: 'end' })] }).fit(first, data());
    const resumed = new EveryOtherEpoch();
    await new Trainer({ ...quiet, maxEpochs: 3, enableCheckpointing: false }).fit(resumed, data(), { ckptPath: path.join(dir, 'end.ckpt') });
    expect(resumed.lrAtEpochStart).toEqual({ 1: 0.1, 2: 0.05 });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('logging interval longer than the run', () => {
  const logger = { name: 'rec', version: 0, logDir: os.tmpdir(), logMetrics(): void {}, logHyperparams(): void {}, save(): void {}, finalize(): void {} };
  async function warningsOf(options: { logEveryNSteps: number; maxSteps?: number }): Promise<string[]> {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
    try {
      const train = new ArrayDataLoader(regressionData(48, 4, 1), { batchSize: 8 }); // 6 batches per epoch
      await new Trainer({ ...quiet, enableCheckpointing: false, logger: logger as never, maxEpochs: 2, ...options }).fit(new LinearRegressor(), { train });
    } finally {
      console.warn = warn;
    }
    return warnings.filter((w) => w.includes('logEveryNSteps'));
  }

  it('warns as Lightning does when an epoch has fewer batches than logEveryNSteps, or maxSteps ends the run first', async () => {
    const [epochWarning, ...more] = await warningsOf({ logEveryNSteps: 50 });
    expect(epochWarning).toMatch(/number of training batches \(6\) is smaller than the logging interval `logEveryNSteps=50`/);
    expect(more).toEqual([]); // once per fit, not per epoch
    expect(await warningsOf({ logEveryNSteps: 5, maxSteps: 4 })).toEqual([expect.stringMatching(/`maxSteps=4` ends the run before the first logging step/)]);
    expect(await warningsOf({ logEveryNSteps: 5 })).toEqual([]);
  });
});
