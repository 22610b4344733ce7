import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchDdp, type LaunchResult } from '../../strategies/ddp/launcher.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

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
  opts: { devices: number; env?: Record<string, string>; graceMs?: number },
): Promise<RunOutput> {
  let stdout = '';
  let stderr = '';
  const pids: number[] = [];
  const result = await launchDdp({
    devices: opts.devices,
    masterAddr: '127.0.0.1',
    script: path.join(FIXTURES, fixture),
    args: [scenario],
    env: { ...process.env, LC_BUILD: build, LIGHTCLIP_DDP_TIMEOUT: '20', ...opts.env },
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
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
