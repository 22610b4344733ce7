import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, parseResults, runWorkers, spawnNode, testBackends } from './helpers.js';

// Gloo and MPI groups have no point-to-point exchange: SigLIP's neighbour exchange goes through all-gather there.
const BACKENDS = (await testBackends()).filter((b) => b !== 'mpi');

let build = '';
beforeAll(async () => {
  build = await buildForWorkers();
});

describe('ClipWrapper with --siglip under DDP', () => {
  const cases: Array<[number, string, string]> = [];
  for (const backend of BACKENDS) {
    for (const [world, impl] of [[2, 'bidir'], [3, 'bidir'], [3, 'shift'], [2, 'reduce'], [3, 'gather']] as const) {
      if (backend === 'zmq' || impl === 'bidir' || impl === 'shift') cases.push([world, impl, backend]);
    }
  }
  it.each(cases)('%i processes (%s, %s) reach the weights and gradients of 1 process with the global batch', async (world, impl, backend) => {
    const single = spawnNode([path.join(FIXTURES, 'siglipClipWorker.mjs'), 'single'], { LC_BUILD: build });
    const ddp = await runWorkers(build, 'siglipClipWorker.mjs', 'ddp', { devices: world, env: { SIGLIP_DIST_IMPL: impl }, backend: backend as 'zmq' | 'gloo' });
    const exit = await single.exit;
    expect(exit.code, single.err()).toBe(0);
    expect(ddp.result.exitCode, ddp.stderr).toBe(0);
    const [ref] = parseResults(single.out());
    const ranks = ddp.results.sort((a, b) => a.rank - b.rank);
    expect(ranks).toHaveLength(world);
    const w = ref!.weights as number[];
    const g = ref!.grads as number[];
    for (const r of ranks) {
      (r.grads as number[]).forEach((v, i) => expect(Math.abs(v - g[i]!), `rank ${r.rank} grad ${i}: ${v} vs ${g[i]}`).toBeLessThan(1e-5 + 1e-4 * Math.abs(g[i]!)));
      (r.weights as number[]).forEach((v, i) => expect(Math.abs(v - w[i]!), `rank ${r.rank} weight ${i}`).toBeLessThan(1e-5));
    }
  }, 60_000);
});
