import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Trainer } from '../../index.js';
import { buildForWorkers, CLI_SOURCES } from './fixtures/build.js';
import { runWorkers, waitGone } from './helpers.js';

let build = '';
let tmp = '';
beforeAll(async () => {
  build = await buildForWorkers([...CLI_SOURCES, 'index.ts', 'tests/core/helpers.ts']);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'lightclip-agree-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('ranks agree (reduce_boolean_decision)', () => {
  it("`import { Trainer } from 'lightclip'` knows strategy 'ddp'", () => {
    // A package-root import alone registers the strategies (no strategies/ import here).
    const trainer = new Trainer({ strategy: 'ddp', logger: false });
    expect(trainer.strategy.name).toBe('ddp');
    expect(trainer.strategy.constructor.name).toBe('DDPStrategy');
  });

  it('2 ranks with different rank-local metrics stop at the same epoch and keep the same checkpoint files, without hanging', async () => {
    const run = await runWorkers(build, 'agreeWorker.mjs', '', { devices: 2, env: { LC_CKPT_DIR: tmp, LIGHTCLIP_DDP_TIMEOUT: '15' } });
    expect(run.result.exitCode, run.stderr).toBe(0);
    expect(await waitGone(run.pids, 3000)).toEqual([]);
    const [r0, r1] = [0, 1].map((r) => run.results.find((x) => x.rank === r)!);
    expect(r0 && r1, run.stderr).toBeTruthy();
    // Rank 1's EarlyStopping wanted to stop after epoch 3; rank 0's never: any rank stops all.
    expect([r0!.stoppedEpoch, r1!.stoppedEpoch]).toEqual([3, 3]);
    expect(r1!.epochs).toBe(r0!.epochs);
    expect(r1!.globalStep).toBe(r0!.globalStep);
    // Saves where both ranks improved (epochs 0, 1, 3), named by rank 0 (ckpt_metric=2 at epoch 3; rank 1 had 3).
    const step = (r0!.globalStep as number);
    expect(r0!.best).toBe(`epoch=3-step=${step}-ckpt_metric=2.ckpt`);
    expect(r1!.best).toBe(r0!.best);
    expect(r1!.kept).toEqual(r0!.kept);
    expect(r0!.files).toEqual([r0!.best]);
  });
});
