import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mpiStatus } from '../../strategies/ddp/mpi.js';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, parseResults, until, waitGone, workerEnv } from './helpers.js';

// Open MPI's failure behaviour (its documented limits): a killed rank aborts the job through
// mpirun, which names it; a stopped rank cannot be named by MPI, but the collective timeout
// still fires instead of hanging forever. Processes are started by mpirun, on loopback.
const MPI = mpiStatus();
if (!MPI.available) console.log(`[skip] mpi failure tests: ${MPI.reason}`);

let build = '';
beforeAll(async () => {
  if (MPI.available) build = await buildForWorkers();
});
let started: number[] = [];
afterEach(async () => {
  const alive = await waitGone(started, 5000);
  for (const pid of alive) process.kill(pid, 'SIGKILL');
  started = [];
  expect(alive, 'processes left behind').toEqual([]);
});

function mpirun(np: number, scenario: string, env: Record<string, string> = {}) {
  const proc = spawn('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), '--mca', 'btl', 'self,vader,tcp', process.execPath, path.join(FIXTURES, 'pgWorker.mjs'), scenario], {
    env: { ...process.env, ...workerEnv(), LC_BUILD: build, LIGHTCLIP_DDP_BACKEND: 'mpi', LIGHTCLIP_DDP_TIMEOUT: '20', OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return { proc, out: () => out, err: () => err, exit };
}

describe.skipIf(!MPI.available)('mpi backend failures (under mpirun)', () => {
  it('a SIGKILLed rank: mpirun ends the job non-zero within 5 s naming it; nothing left running', async () => {
    const run = mpirun(3, 'loop');
    await until(() => parseResults(run.out()).filter((r) => r.looping).length === 3, 30_000, 'three looping ranks');
    const pids = parseResults(run.out()).filter((r) => r.connected).map((r) => r.pid as number);
    started.push(...pids);
    const victim = parseResults(run.out()).find((r) => r.connected && r.rank === 1)!.pid as number;
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    const code = await run.exit;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(code).not.toBe(0);
    expect(run.err()).toMatch(/process rank 1 with PID \d+ on node \S+ exited on signal 9/);
    expect(await waitGone(pids, 3000)).toEqual([]);
  });

  it('a SIGSTOPped rank: the collective timeout fires on the others (MPI cannot name the rank); the job ends', async () => {
    const run = mpirun(3, 'loop', { LIGHTCLIP_DDP_TIMEOUT: '2' });
    await until(() => parseResults(run.out()).filter((r) => r.looping).length === 3, 30_000, 'three looping ranks');
    const pids = parseResults(run.out()).filter((r) => r.connected).map((r) => r.pid as number);
    started.push(...pids);
    const victim = parseResults(run.out()).find((r) => r.connected && r.rank === 1)!.pid as number;
    process.kill(victim, 'SIGSTOP');
    const t0 = Date.now();
    const code = await run.exit;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(code).not.toBe(0);
    expect(run.err()).toMatch(/timed out after 2 s under MPI, which cannot tell which rank hangs/);
    // mpirun kills the stopped rank too
    expect(await waitGone(pids, 5000)).toEqual([]);
  });
});
