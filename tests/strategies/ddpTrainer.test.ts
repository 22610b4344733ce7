import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { create } from '../../core/registry.js';
import { tf } from '../../core/tf.js';
import { DDPStrategy } from '../../strategies/ddp/ddpStrategy.js';
import '../../strategies/index.js';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, parseResults, runWorkers, spawnNode, testBackends, waitGone, type WorkerResult } from './helpers.js';

const BACKENDS = await testBackends();

let build = '';
let tmp = '';
beforeAll(async () => {
  build = await buildForWorkers();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'lightclip-ddp-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('DDPStrategy in one process', () => {
  it("is registered as 'ddp'; without a launcher, --devices 2 is a clear error", () => {
    expect(create('strategy', 'ddp', { env: {} })).toBeInstanceOf(DDPStrategy);
    expect(create<{ name: string }>('strategy', 'single').name).toBe('single_device');
    expect(() => new DDPStrategy({ devices: 2, env: {} })).toThrow(/needs 2 processes, but this one was not started by a DDP launcher/);
    expect(() => new DDPStrategy({ devices: 2, env: { WORLD_SIZE: '4', RANK: '0', LOCAL_RANK: '0', MASTER_PORT: '1' } })).toThrow(/world size of 4/);
    expect(() => new DDPStrategy({ timeoutSeconds: 0, env: {} })).toThrow(MisconfigurationError);
    expect(() => new DDPStrategy({ env: { WORLD_SIZE: '2', RANK: '1', LOCAL_RANK: '1' } })).toThrow(/`MASTER_PORT` must be set/);
  });

  it('with world size 1, collectives are the identity (allGather adds the rank axis)', async () => {
    const s = new DDPStrategy({ env: {} });
    await s.setup();
    expect([s.globalRank, s.worldSize, s.isGlobalZero]).toEqual([0, 1, true]);
    const t = tf.tensor2d([[1, 2]]);
    const g = await s.allGather(t);
    expect(g.shape).toEqual([1, 1, 2]);
    await expect(s.allGather(t, { syncGrads: true })).rejects.toThrow(/syncGrads: true/);
    expect(await s.reduceMetrics({ a: 1 }, { a: 'mean' })).toEqual({ a: 1 });
    await s.barrier('x');
    await s.teardown();
    tf.dispose([t, g]);
  });
});

const TOL = 1e-5;

function expectClose(actual: number[], expected: number[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!), `${what}[${i}]: ${v} vs ${expected[i]}`).toBeLessThan(TOL));
}

describe.each(BACKENDS)('DDP training equals one-process training (%s backend)', (backend) => {
  it('1 process with batch 8 and 2 processes with batch 4 (also: batch 2 × accumulate 2 with clipping; resumed) reach the same weights', async () => {
    // The reference run is also a child process, so both sides run the same transpiled code.
    await mkdir(path.join(tmp, backend), { recursive: true });
    const single = spawnNode([path.join(FIXTURES, 'trainWorker.mjs'), 'single'], { LC_BUILD: build });
    const ddp = await runWorkers(build, 'trainWorker.mjs', 'ddp', { devices: 2, env: { LC_TMP: path.join(tmp, backend), LIGHTCLIP_DDP_BACKEND: backend }, backend });
    const exit = await single.exit;
    expect(exit.code, single.err()).toBe(0);
    expect(ddp.result.exitCode, ddp.stderr).toBe(0);
    expect(await waitGone([...ddp.pids, single.proc.pid!], 3000)).toEqual([]);

    const refs = parseResults(single.out());
    const ref = (config: string): WorkerResult => refs.find((r) => r.config === config)!;
    expect(ref('plain').globalStep).toBe(9);
    // The references differ from each other: clipping was active.
    expect(Math.abs((ref('plain').weights as number[])[0]! - (ref('clipped').weights as number[])[0]!)).toBeGreaterThan(1e-3);

    const get = (config: string, rank: number): WorkerResult => ddp.results.find((r) => r.config === config && r.rank === rank)!;
    for (const [config, reference, calls] of [
      ['plain', 'plain', 9],
      ['clipped', 'clipped', 9], // batch 2 × accumulate 2: one all-reduce per optimizer step, not per batch
      ['resume', 'plain', 5], // steps 5..9 after restoring the step-4 checkpoint
    ] as const) {
      const [r0, r1] = [get(config, 0), get(config, 1)];
      expect(r0 && r1, `results of ${config}`).toBeTruthy();
      expectClose(r0.weights as number[], ref(reference).weights as number[], `${config} rank 0`);
      // Identical on every rank: same broadcast start, same averaged gradients.
      expect(r1.weights, `${config}: ranks differ`).toEqual(r0.weights);
      expect([r0.globalStep, r1.globalStep]).toEqual([9, 9]);
      expect([r0.reduceCalls, r1.reduceCalls]).toEqual([calls, calls]);
    }
    // log(..., { syncDist: true }): the mean of the two half-batch losses is the full-batch loss.
    const synced = [get('plain', 0).synced, get('plain', 1).synced] as number[];
    expect(synced[0]).toBe(synced[1]);
    expect(Math.abs(synced[0]! - (ref('plain').synced as number))).toBeLessThan(TOL);
  });
});
