import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { findFreePort, planDdpLaunch, validateLaunchOptions } from '../../strategies/ddp/launcher.js';
import { parseRunArgs } from '../../strategies/ddp/run.js';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, isAlive, parseResults, runWorkers, spawnNode, testBackends, until, waitGone, type Spawned } from './helpers.js';

// The mpi backend's failure behaviour is tested under mpirun (mpi.test.ts).
const BACKENDS = (await testBackends()).filter((b) => b !== 'mpi');

let build = '';
beforeAll(async () => {
  build = await buildForWorkers();
});

// Every process a test starts is recorded here and must be gone when the test ends.
let started: number[] = [];
afterEach(async () => {
  const alive = await waitGone(started, 5000);
  for (const pid of alive) process.kill(pid, 'SIGKILL');
  started = [];
  expect(alive, 'processes left behind').toEqual([]);
});

function launcherCli(args: string[], env: Record<string, string> = {}): Spawned {
  const s = spawnNode([path.join(build, 'strategies/ddp/run.js'), ...args], { LC_BUILD: build, LIGHTCLIP_DDP_TIMEOUT: '20', ...env });
  started.push(s.proc.pid!);
  return s;
}

function workerPids(s: Spawned): number[] {
  return parseResults(s.out())
    .filter((r) => r.connected)
    .map((r) => r.pid as number);
}

describe('launch options', () => {
  it('names the flag and the expected value', () => {
    const base = { devices: 2, script: 'x.js' };
    expect(() => validateLaunchOptions({ ...base, devices: 0 })).toThrow(/`--devices` must be an integer ≥ 1, got 0/);
    expect(() => validateLaunchOptions({ ...base, numNodes: 2, nodeRank: 2, masterPort: 1234 })).toThrow(/`--node_rank` must be in \[0, 1\]/);
    expect(() => validateLaunchOptions({ ...base, numNodes: 2 })).toThrow(/`--master_port` \(or MASTER_PORT\) is required/);
    expect(() => validateLaunchOptions({ ...base, masterPort: 70000 })).toThrow(MisconfigurationError);
    expect(() => parseRunArgs(['--gpus', '2', 'x.js'])).toThrow(/Unknown launcher flag `--gpus`/);
    expect(() => parseRunArgs(['--devices', 'two', 'x.js'])).toThrow(/`--devices` must be a number/);
    const o = parseRunArgs(['--devices=3', '--master-port', '29501', 'train.js', '--lr', '1'], { NODE_RANK: '0' });
    expect(o).toMatchObject({ devices: 3, masterPort: 29501, nodeRank: 0, script: path.resolve('train.js'), args: ['--lr', '1'] });
    expect(parseRunArgs(['--ddp_backend', 'gloo', '--ddp_init', 'file:///shared/x', 'train.js'], {}).env).toMatchObject({ LIGHTCLIP_DDP_BACKEND: 'gloo', LIGHTCLIP_DDP_INIT: 'file:///shared/x' });
    expect(() => parseRunArgs(['--ddp_backend', 'nccl', 'x.js'])).toThrow(/`--ddp_backend` must be auto, gloo, mpi or zmq, got "nccl"/);
  });

  it('plans: spawn workers here, or run as a worker of torchrun/srun', () => {
    expect(planDdpLaunch({ devices: 2 }, {})).toEqual({ kind: 'spawn', options: { devices: 2, numNodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: undefined } });
    const slurm = { SLURM_NTASKS: '4', SLURM_PROCID: '3', SLURM_LOCALID: '1', SLURM_NODEID: '1', SLURM_NODELIST: 'n[1-2]', SLURM_JOB_ID: '123456' };
    const plan = planDdpLaunch({ devices: 2, numNodes: 2 }, slurm);
    expect(plan.kind === 'worker' && plan.environment.globalRank).toBe(3);
    expect(() => planDdpLaunch({ devices: 4, numNodes: 2 }, slurm)).toThrow(/= 8 processes, but the slurm environment started 4/);
  });
});

describe('launchDdp', () => {
  it('sets ranks, world size and LIGHTCLIP_NUM_THREADS = cores / devices', async () => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 2 });
    started.push(...out.pids);
    expect(out.result.exitCode, out.stderr).toBe(0);
    const rs = out.results.filter((r) => 'sum0' in r).sort((a, b) => a.rank - b.rank);
    expect(rs.map((r) => [r.rank, r.localRank, r.worldSize, r.sum0, r.sum999])).toEqual([
      [0, 0, 2, 1, 2 * 999 + 1],
      [1, 1, 2, 1, 2 * 999 + 1],
    ]);
    expect(rs[0]!.threads).toBe(String(Math.max(1, Math.floor(os.availableParallelism() / 2))));
  });

  it('a worker that ignores SIGTERM is SIGKILLed after the grace period; the exit code is the failed rank\'s', async () => {
    const t0 = Date.now();
    const out = await runWorkers(build, 'pgWorker.mjs', 'stubborn', { devices: 2, graceMs: 1000 });
    started.push(...out.pids);
    expect(out.result.exitCode).toBe(3);
    expect(out.result.failure).toMatchObject({ rank: 1, code: 3, signal: null });
    expect(out.result.message).toMatch(/rank 1 \(local rank 1, pid \d+\) exited with code 3/);
    expect(out.results.some((r) => r.rank === 0 && r.ignoredSigterm)).toBe(true);
    expect(out.result.workers.find((w) => w.rank === 0)!.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('forwards SIGINT to the workers and exits 130', async () => {
    const cli = launcherCli(['--devices', '2', path.join(FIXTURES, 'pgWorker.mjs'), 'loop']);
    await until(() => parseResults(cli.out()).filter((r) => r.looping).length === 2, 20_000, 'two looping workers');
    const pids = workerPids(cli);
    started.push(...pids);
    cli.proc.kill('SIGINT');
    const exit = await cli.exit;
    expect(exit.code).toBe(130);
    expect(cli.err()).toMatch(/received SIGINT, stopping the workers of node 0/);
    expect(await waitGone(pids, 3000)).toEqual([]);
  });

  it('workers exit when their launcher is killed (no orphans)', async () => {
    const cli = launcherCli(['--devices', '2', path.join(FIXTURES, 'pgWorker.mjs'), 'loop']);
    await until(() => parseResults(cli.out()).filter((r) => r.looping).length === 2, 20_000, 'two looping workers');
    const pids = workerPids(cli);
    started.push(...pids);
    cli.proc.kill('SIGKILL');
    await cli.exit;
    expect(await waitGone(pids, 3000)).toEqual([]);
  });
});

describe.each(BACKENDS)('multi-node on loopback (%s backend)', (backend) => {
  it('two launchers (node_rank 0 and 1, one device each) complete an all-reduce', async () => {
    const port = String(await findFreePort());
    const node = (r: number): Spawned =>
      launcherCli(['--ddp_backend', backend, '--devices', '1', '--num_nodes', '2', '--node_rank', String(r), '--master_addr', '127.0.0.1', '--master_port', port, path.join(FIXTURES, 'pgWorker.mjs'), 'once']);
    const nodes = [node(1), node(0)]; // node 1 first: it must wait for rank 0 to listen
    const exits = await Promise.all(nodes.map((n) => n.exit));
    expect(exits.map((e) => e.code), nodes.map((n) => n.err()).join('\n')).toEqual([0, 0]);
    const rs = nodes.flatMap((n) => parseResults(n.out())).filter((r) => 'sum0' in r);
    expect(rs.map((r) => [r.rank, r.nodeRank, r.localRank, r.worldSize, r.sum0]).sort()).toEqual([
      [0, 0, 0, 2, 1],
      [1, 1, 0, 2, 1],
    ]);
  });
});

describe.each(BACKENDS)('failures (%s backend)', (backend) => {
  it('a worker killed mid-collective ends the run non-zero, naming it, in bounded time, with no orphans', async () => {
    const cli = launcherCli(['--ddp_backend', backend, '--devices', '3', '--grace_seconds', '2', path.join(FIXTURES, 'pgWorker.mjs'), 'loop']);
    await until(() => parseResults(cli.out()).filter((r) => r.looping).length === 3, 20_000, 'three looping workers');
    const pids = workerPids(cli);
    started.push(...pids);
    const victim = parseResults(cli.out()).find((r) => r.connected && r.rank === 1)!.pid as number;
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    const exit = await cli.exit;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(exit.code).toBe(128 + 9);
    expect(cli.err()).toMatch(/rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL/);
    expect(await waitGone(pids, 3000)).toEqual([]);
  });

  it('a SIGSTOPped worker: the collective timeout fires on the others, naming it; nothing left running', async () => {
    const cli = launcherCli(['--ddp_backend', backend, '--devices', '3', '--grace_seconds', '1', path.join(FIXTURES, 'pgWorker.mjs'), 'loop'], { LIGHTCLIP_DDP_TIMEOUT: '2' });
    // Generous: with a 2 s timeout, a start-up slowed by a loaded machine must not look like a hang.
    await until(() => parseResults(cli.out()).filter((r) => r.looping).length === 3, 40_000, 'three looping workers');
    const pids = workerPids(cli);
    started.push(...pids);
    const victim = parseResults(cli.out()).find((r) => r.connected && r.rank === 1)!.pid as number;
    const t0 = Date.now();
    process.kill(victim, 'SIGSTOP');
    const exit = await cli.exit;
    // The 2 s timeout, the moment spent asking who is missing, the launcher's 1 s grace.
    expect(Date.now() - t0).toBeLessThan(9000);
    expect(exit.code).not.toBe(0);
    expect(cli.err()).toMatch(/timed out after 2 s.*rank 1 (never arrived|entered it but stopped responding)/);
    expect(await waitGone(pids, 3000)).toEqual([]);
  });

  it('when a worker on another node is killed, the other nodes fail with an error naming it', async () => {
    const port = String(await findFreePort());
    const node = (r: number): Spawned =>
      launcherCli(['--ddp_backend', backend, '--devices', '1', '--num_nodes', '3', '--node_rank', String(r), '--master_port', port, path.join(FIXTURES, 'pgWorker.mjs'), 'loop']);
    const nodes = [node(0), node(1), node(2)];
    await until(() => nodes.every((n) => parseResults(n.out()).some((r) => r.looping)), 20_000, 'three looping nodes');
    const pids = nodes.flatMap(workerPids);
    started.push(...pids);
    const t0 = Date.now();
    process.kill(workerPids(nodes[1]!)[0]!, 'SIGKILL');
    const exits = await Promise.all(nodes.map((n) => n.exit));
    // Noticed through the dropped connection, long before the 20 s collective timeout.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(exits.map((e) => e.code !== 0)).toEqual([true, true, true]);
    for (const n of [nodes[0]!, nodes[2]!]) expect(n.err()).toMatch(/rank 1 disconnected without saying goodbye|rank 1 aborted/);
    expect(pids.filter(isAlive)).toEqual([]);
  });
});
