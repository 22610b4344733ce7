import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, parseResults, runWorkers, spawnNode, testBackends } from './helpers.js';

const BACKENDS = await testBackends();

let build = '';
beforeAll(async () => {
  build = await buildForWorkers();
});

describe.each(BACKENDS)('CLIP under DDP (%s backend)', (backend) => {
  it('2 processes (batch 4 each, gradient caching in chunks of 2, features all-gathered) reach the weights of 1 process with batch 8', async () => {
    const single = spawnNode([path.join(FIXTURES, 'clipWorker.mjs'), 'single'], { LC_BUILD: build });
    const ddp = await runWorkers(build, 'clipWorker.mjs', 'ddp', { devices: 2, env: { LIGHTCLIP_DDP_BACKEND: backend }, backend });
    const exit = await single.exit;
    expect(exit.code, single.err()).toBe(0);
    expect(ddp.result.exitCode, ddp.stderr).toBe(0);
    const [ref] = parseResults(single.out());
    expect(ref!.step).toBe(6);
    const ranks = ddp.results.sort((a, b) => a.rank - b.rank);
    expect(ranks).toHaveLength(2);
    const w = ref!.weights as number[];
    const g = ref!.grads as number[];
    for (const r of ranks) {
      const rw = r.weights as number[];
      expect(rw).toHaveLength(w.length);
      rw.forEach((v, i) => expect(Math.abs(v - w[i]!), `rank ${r.rank} weight ${i}`).toBeLessThan(1e-5));
      const rg = r.grads as number[];
      expect(rg).toHaveLength(g.length);
      rg.forEach((v, i) => expect(Math.abs(v - g[i]!), `rank ${r.rank} grad ${i}: ${v} vs ${g[i]}`).toBeLessThan(1e-5 + 1e-4 * Math.abs(g[i]!)));
      // The logged loss is the global-batch loss: the same as the one-process run's.
      expect(Math.abs((r.loss as number) - (ref!.loss as number))).toBeLessThan(1e-5);
    }
  });

  it('without gradient caching, with accumulateGradBatches 2: one forward per sample, the weights of 1 process', async () => {
    const env = { CLIP_MINIBATCH: '0', CLIP_ACCUMULATE: '2' };
    const single = spawnNode([path.join(FIXTURES, 'clipWorker.mjs'), 'single'], { LC_BUILD: build, ...env });
    const ddp = await runWorkers(build, 'clipWorker.mjs', 'ddp', { devices: 2, env });
    const exit = await single.exit;
    expect(exit.code, single.err()).toBe(0);
    expect(ddp.result.exitCode, ddp.stderr).toBe(0);
    const [ref] = parseResults(single.out());
    expect(ref!.step).toBe(6);
    // 6 optimizer steps × 2 accumulated batches × 8 samples, each encoded once.
    expect(ref!.rows).toEqual({ image: 96, text: 96 });
    const w = ref!.weights as number[];
    const g = ref!.grads as number[];
    const ranks = ddp.results.sort((a, b) => a.rank - b.rank);
    expect(ranks).toHaveLength(2);
    for (const r of ranks) {
      expect(r.step).toBe(6);
      // Each rank: 12 batches of 4 samples, one forward each (no second, gradient pass).
      expect(r.rows).toEqual({ image: 48, text: 48 });
      (r.weights as number[]).forEach((v, i) => expect(Math.abs(v - w[i]!), `rank ${r.rank} weight ${i}`).toBeLessThan(1e-5));
      (r.grads as number[]).forEach((v, i) => expect(Math.abs(v - g[i]!), `rank ${r.rank} grad ${i}: ${v} vs ${g[i]}`).toBeLessThan(1e-5 + 1e-4 * Math.abs(g[i]!)));
    }
  });
});
