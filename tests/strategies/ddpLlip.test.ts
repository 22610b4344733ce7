import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildForWorkers, CLI_SOURCES } from './fixtures/build.js';
import { FIXTURES, parseResults, runWorkers, spawnNode } from './helpers.js';

let build = '';
beforeAll(async () => {
  build = await buildForWorkers(CLI_SOURCES);
});

describe('Llip under DDP (local images against all-gathered texts)', () => {
  it.each([
    [2, 'siglip'],
    [3, 'infonce'],
  ])('%i processes (%s) have the gradients and weights of 1 process with the global batch', async (world, loss) => {
    const single = spawnNode([path.join(FIXTURES, 'llipWorker.mjs'), 'single'], { LC_BUILD: build, LLIP_LOSS: loss });
    const ddp = await runWorkers(build, 'llipWorker.mjs', 'ddp', { devices: world, env: { LLIP_LOSS: loss } });
    const exit = await single.exit;
    expect(exit.code, single.err()).toBe(0);
    expect(ddp.result.exitCode, ddp.stderr).toBe(0);
    const [ref] = parseResults(single.out());
    expect(ref!.step).toBe(4);
    const ranks = ddp.results.sort((a, b) => a.rank - b.rank);
    expect(ranks).toHaveLength(world);
    const g = ref!.grads as number[];
    const w = ref!.weights as number[];
    expect(g.some((v) => v !== 0)).toBe(true);
    for (const r of ranks) {
      // 3e-5 absolute: near-zero entries (e.g. attention key biases, whose exact gradient is 0) carry float32
      // noise of ~1e-5 that depends on the summation order, which differs between 1 and 2 ranks.
      (r.grads as number[]).forEach((v, i) => expect(Math.abs(v - g[i]!), `rank ${r.rank} grad ${i}: ${v} vs ${g[i]}`).toBeLessThan(3e-5 + 1e-3 * Math.abs(g[i]!)));
      // Weight fingerprints after 4 AdamW steps: Adam divides by √v, so gradients that are rounding
      // noise (different summation order across ranks) move a weight by up to lr; hence the looser bound.
      (r.weights as number[]).forEach((v, i) => expect(Math.abs(v - w[i]!), `rank ${r.rank} weight ${i}`).toBeLessThan(2e-3 + 1e-3 * Math.abs(w[i]!)));
      expect(Math.abs((r.loss as number) - (ref!.loss as number))).toBeLessThan(1e-4);
    }
  }, 90_000);
});
