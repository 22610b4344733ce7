import { beforeAll, describe, expect, it } from 'vitest';
import { planBuckets, ProcessGroup, timeoutFromEnv } from '../../strategies/ddp/processGroup.js';
import { MisconfigurationError } from '../../core/errors.js';
import { buildForWorkers } from './fixtures/build.js';
import { GlooProcessGroup } from '../../strategies/ddp/gloo.js';
import { runWorkers, testBackends, waitGone, type WorkerResult } from './helpers.js';

const BACKENDS = await testBackends();

// Real worker processes on 127.0.0.1, started by the in-process launcher; every test
// checks that its workers are gone afterwards.
let build = '';
beforeAll(async () => {
  build = await buildForWorkers();
});

function byRank(results: WorkerResult[], key: string): WorkerResult[] {
  return results.filter((r) => key in r).sort((a, b) => a.rank - b.rank);
}

describe('ProcessGroup (in process)', () => {
  it.each([
    ['zmq', ProcessGroup.connect],
    ['gloo', GlooProcessGroup.connect],
  ] as const)('world size 1 is a no-op and opens no socket (%s)', async (_name, connect) => {
    const pg = await connect({ rank: 0, worldSize: 1, masterAddr: '203.0.113.1', masterPort: 1 });
    const a = Float32Array.from([1, 2, 3]);
    expect(await pg.allReduce(a, 'mean')).toBe(a);
    expect(Array.from(a)).toEqual([1, 2, 3]);
    expect((await pg.allGather(a))[0]).toBe(a);
    expect(await pg.broadcast({ x: 1 })).toEqual({ x: 1 });
    await pg.barrier('x');
    await pg.close();
  });

  it('rejects bad ranks, ports and timeouts with the variable named', async () => {
    await expect(ProcessGroup.connect({ rank: 2, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1 })).rejects.toThrow(/`RANK` must be an integer in \[0, 1\]/);
    await expect(ProcessGroup.connect({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 70000 })).rejects.toThrow(/`MASTER_PORT`/);
    expect(() => timeoutFromEnv({ LIGHTCLIP_DDP_TIMEOUT: 'soon' })).toThrow(MisconfigurationError);
    expect(() => timeoutFromEnv({ LIGHTCLIP_DDP_TIMEOUT: '-1' })).toThrow(/LIGHTCLIP_DDP_TIMEOUT/);
    expect(timeoutFromEnv({ LIGHTCLIP_DDP_TIMEOUT: '2.5' })).toBe(2500);
    expect(timeoutFromEnv({})).toBe(300_000);
  });

  it('plans buckets of consecutive arrays, a large array alone', () => {
    expect(planBuckets([3, 0, 10, 5, 1, 0, 7, 2], 8)).toEqual([[0, 1], [2], [3, 4, 5], [6], [7]]);
    expect(planBuckets([], 8)).toEqual([]);
    expect(planBuckets([4, 4, 4], 8)).toEqual([[0, 1], [2]]);
  });
});

describe.each(BACKENDS.flatMap((b) => [2, 3].map((n) => [b, n] as const)))('%s backend with %i processes', (backend, devices) => {
  const env = { LIGHTCLIP_DDP_BACKEND: backend };
  it('all-reduces 0, 1, 7, 1000 and 10M floats exactly (sum and mean), and buckets', async () => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'allreduce', { devices, env, backend });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const sizes = out.results.filter((r) => 'n' in r);
    expect(sizes).toHaveLength(5 * devices);
    for (const r of sizes) {
      expect(r.bad, `rank ${r.rank} n=${r.n as number}`).toBeNull();
      expect(r.badMean, `rank ${r.rank} n=${r.n as number} mean`).toBeNull();
      expect(r.inPlace).toBe(true);
    }
    for (const r of byRank(out.results, 'many')) expect(r.badMany).toBeNull();
    expect(await waitGone(out.pids, 2000)).toEqual([]);
  });

  it('broadcasts floats and JSON, gathers arrays of different lengths, and meets at a barrier', async () => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'collectives', { devices, env, backend });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const rs = byRank(out.results, 'floats');
    expect(rs).toHaveLength(devices);
    for (const r of rs) {
      expect(r.floats).toEqual([1.5, -2, 3e7, 0]);
      expect(r.json).toEqual({ from: devices - 1, list: [1, 'two', null] });
      expect(r.bigBad).toBeNull();
      expect(r.gathered).toEqual(Array.from({ length: devices }, (_, k) => Array.from({ length: k + 1 }, (_, i) => k * 10 + i)));
      expect(r.emptyLengths).toEqual(new Array(devices).fill(0));
      expect(r.objects).toEqual(Array.from({ length: devices }, (_, k) => ({ r: k, name: `w${k}` })));
    }
  });
});

describe.each(BACKENDS.filter((b) => b !== 'mpi'))('collective timeouts (%s)', (backend) => {
  it.each(['allReduce', 'barrier'])('%s that rank 2 never joins: ranks 0 and 1 fail naming rank 2', async (collective) => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'timeout', {
      devices: 3,
      env: { LIGHTCLIP_DDP_TIMEOUT: '1.5', LC_MISSING: '2', LC_COLLECTIVE: collective, LIGHTCLIP_DDP_BACKEND: backend },
    });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const errs = byRank(out.results, 'error');
    expect(errs.map((e) => e.rank)).toEqual([0, 1]);
    for (const e of errs) {
      expect(e.name).toBe('DistributedError');
      expect(e.error).toMatch(/timed out after 1\.5 s/);
      expect(e.error).toMatch(/rank 2 never arrived/);
      expect(e.ranks).toEqual([2]);
      // Bounded: the timeout plus the moment spent asking the others what they wait for.
      expect(e.ms as number).toBeLessThan(1500 + 2500);
    }
  });
});

describe.each(BACKENDS.filter((b) => b !== 'mpi'))('misuse fails fast, naming the rank (%s)', (backend) => {
  const env = { LIGHTCLIP_DDP_BACKEND: backend };
  it.each([
    ['collective', /rank 1 called barrier as collective #2 while rank 0 called allGather\(JSON\)|rank 0 called allGather\(JSON\) as collective #2 while rank 1 called barrier/],
    ['length', /passed an array of 100[01] floats where this rank expected 100[01]: every rank must pass arrays of the same length/],
  ])('%s mismatch', async (misuse, pattern) => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'misuse', { devices: 2, env: { ...env, LC_MISUSE: misuse } });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const errs = byRank(out.results, 'error');
    expect(errs).toHaveLength(2);
    // At least the rank that saw the bad message says exactly what happened; the other may learn it through the abort.
    expect(errs.some((e) => pattern.test(String(e.error))), JSON.stringify(errs)).toBe(true);
    for (const e of errs) expect(e.ms as number).toBeLessThan(5000); // the timeout is 20 s
  });

  it('a rank that leaves makes the collective waiting for it fail at once', async () => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'misuse', { devices: 2, env: { ...env, LC_MISUSE: 'leave' } });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const [e] = byRank(out.results, 'error');
    expect(e!.error).toMatch(/rank 1 left the process group without taking part/);
    expect(e!.ranks).toEqual([1]);
    expect(e!.ms as number).toBeLessThan(5000);
  });
});
