import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendName } from '../../strategies/ddp/group.js';
import { launchDdp, type LaunchResult } from '../../strategies/ddp/launcher.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const ROOT = path.resolve(FIXTURES, '../../..');

/**
 * The environment every worker gets: the native addon of this checkout (the transpiled
 * sources live under node_modules/.cache, which may be a symlink into another checkout).
 */
export function workerEnv(): Record<string, string> {
  const addon = path.join(ROOT, 'native', 'build', 'Release', 'lightclip.node');
  return existsSync(addon) && !process.env.LIGHTCLIP_NATIVE_PATH ? { LIGHTCLIP_NATIVE_PATH: addon } : {};
}

/** One `RESULT {...}` line a worker printed. */
export type WorkerResult = Record<string, unknown> & { rank: number };

/** What {@link runWorkers} collected. */
export interface RunOutput {
  result: LaunchResult;
  results: WorkerResult[];
  stderr: string;
  pids: number[];
}

/** Parses the `RESULT <json>` lines of a worker's stdout. */
export function parseResults(stdout: string): WorkerResult[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice(7)) as WorkerResult);
}

/**
 * Runs `fixture scenario` in `devices` local workers through the in-process launcher
 * (loopback only), collecting their RESULT lines and stderr.
 */
export async function runWorkers(
  build: string,
  fixture: string,
  scenario: string,
  opts: { devices: number; env?: Record<string, string>; graceMs?: number; backend?: BackendName },
): Promise<RunOutput> {
  if (opts.backend === 'mpi') return runMpiWorkers(build, fixture, scenario, opts);
  let stdout = '';
  let stderr = '';
  const pids: number[] = [];
  const result = await launchDdp({
    devices: opts.devices,
    masterAddr: '127.0.0.1',
    script: path.join(FIXTURES, fixture),
    args: [scenario],
    env: { ...process.env, ...workerEnv(), LC_BUILD: build, LIGHTCLIP_DDP_TIMEOUT: '20', ...opts.env },
    stdio: 'pipe',
    forwardSignals: false,
    graceMs: opts.graceMs ?? 2000,
    log: (line) => (stderr += `${line}\n`),
    onSpawn: ({ pid, process: proc }) => {
      pids.push(pid);
      proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    },
  });
  return { result, results: parseResults(stdout), stderr, pids };
}

/** A process that exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive; returns the ones still alive after `ms`. */
export async function waitGone(pids: readonly number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A child process with its output collected and its exit awaited. */
export interface Spawned {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Spawns `node args...` with output collected (for CLI launchers run as real processes). */
export function spawnNode(args: readonly string[], env: Record<string, string | undefined>): Spawned {
  const t0 = Date.now();
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...workerEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0 })),
  );
  return { proc, out: () => out, err: () => err, exit };
}

/** Resolves when `cond()` holds (polled), or rejects after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The DDP backends the tests run on: zmq always; gloo when the addon was built with it; mpi
 * when Open MPI is installed (its tests start the workers with mpirun). The others are
 * skipped with the reason printed once.
 */
export async function testBackends(): Promise<BackendName[]> {
  const { glooStatus } = await import('../../strategies/ddp/gloo.js');
  const { mpiStatus } = await import('../../strategies/ddp/mpi.js');
  const out: BackendName[] = ['zmq'];
  const g = glooStatus();
  if (g.available) out.push('gloo');
  else if (!skipped.has('gloo')) console.log(`[skip] gloo backend: ${g.reason}`);
  const m = mpiStatus();
  if (m.available) out.push('mpi');
  else if (!skipped.has('mpi')) console.log(`[skip] mpi backend: ${m.reason}`);
  skipped.add('gloo').add('mpi');
  return out;
}
const skipped = new Set<string>();

/** `mpirun -np devices node fixture scenario` (the mpi backend's ranks come from mpirun, not launchDdp). */
export async function runMpiWorkers(build: string, fixture: string, scenario: string, opts: { devices: number; env?: Record<string, string> }): Promise<RunOutput> {
  const env = { ...process.env, ...workerEnv(), LC_BUILD: build, LIGHTCLIP_DDP_TIMEOUT: '20', LIGHTCLIP_DDP_BACKEND: 'mpi', ...opts.env };
  // Each rank's stdout to its own file: mpirun forwards the ranks' output in chunks, so two
  // long RESULT lines can interleave mid-line on the shared stdout.
  const outDir = mkdtempSync(path.join(tmpdir(), 'lc-mpi-'));
  const args = ['--allow-run-as-root', '--oversubscribe', '--output-filename', outDir, '-np', String(opts.devices), '--mca', 'btl', 'self,vader,tcp', process.execPath, path.join(FIXTURES, fixture), scenario];
  const proc = spawn('mpirun', args, { env: { ...env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => proc.once('exit', (c, sig) => resolve(c ?? 128 + (sig ? 9 : 1))));
  const rankFiles = readdirSync(outDir, { recursive: true, encoding: 'utf8' }).filter((f) => path.basename(f) === 'stdout');
  const perRank = rankFiles.map((f) => readFileSync(path.join(outDir, f), 'utf8')).join('\n');
  rmSync(outDir, { recursive: true, force: true });
  const results = parseResults(perRank);
  const pids = results.filter((r) => typeof r.pid === 'number').map((r) => r.pid as number);
  const result: LaunchResult = { exitCode: code, workers: [], failure: null, message: `mpirun exited with code ${code}` };
  return { result, results, stderr, pids };
}
