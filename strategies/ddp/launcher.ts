import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { detectClusterEnvironment, LAUNCHER_ENV, type ClusterEnvironment, type Env } from './environment.js';

/** Options of {@link launchDdp} (the flags of `--strategy ddp`). */
export interface LaunchOptions {
  /** Worker processes on this node (`--devices`). */
  devices: number;
  /** Nodes in the run (`--num_nodes`, default 1). */
  numNodes?: number;
  /** This node's index (`--node_rank`, default 0). */
  nodeRank?: number;
  /** Host of node 0 (`--master_addr`, default 127.0.0.1). */
  masterAddr?: string;
  /** Rendezvous port on node 0 (`--master_port`); required with several nodes, else a free port. */
  masterPort?: number;
  /** The JavaScript file every worker runs. */
  script: string;
  /** Arguments after the script. */
  args?: readonly string[];
  /** Options for `node` itself (e.g. `--enable-source-maps`). */
  nodeArgs?: readonly string[];
  /** Base environment of the workers (default `process.env`). */
  env?: Env;
  /** Milliseconds between SIGTERM and SIGKILL when stopping workers (default 5000). */
  graceMs?: number;
  /** Forward SIGINT/SIGTERM/SIGHUP received by this process to the workers (default true). */
  forwardSignals?: boolean;
  /** Workers' stdout/stderr: inherited (default) or piped (read them in `onSpawn`). */
  stdio?: 'inherit' | 'pipe';
  /** Called once per worker right after it starts. */
  onSpawn?: (worker: { rank: number; localRank: number; pid: number; process: ChildProcess }) => void;
  /** Where the launcher's own messages go (default `console.error`). */
  log?: (line: string) => void;
}

/** How one worker ended. */
export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The outcome of {@link launchDdp}. */
export interface LaunchResult {
  /** 0 when every worker succeeded; else the failed worker's code (128 + signal number when killed). */
  exitCode: number;
  workers: WorkerExit[];
  /** The first worker that failed, or null. */
  failure: WorkerExit | null;
  /** One line saying what happened. */
  message: string;
}

type Resolved = Required<Omit<LaunchOptions, 'masterPort' | 'onSpawn'>> & Pick<LaunchOptions, 'masterPort' | 'onSpawn'>;

function positiveInt(flag: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new MisconfigurationError(`\`${flag}\` must be an integer ≥ ${min}, got ${showValue(v)}.`);
  return v;
}

/**
 * Checks the launch flags in one place.
 * @throws MisconfigurationError naming the flag and the expected value.
 */
export function validateLaunchOptions(o: LaunchOptions): Resolved {
  const devices = positiveInt('--devices', o.devices, 1);
  const numNodes = positiveInt('--num_nodes', o.numNodes ?? 1, 1);
  const nodeRank = positiveInt('--node_rank', o.nodeRank ?? 0, 0);
  if (nodeRank >= numNodes) throw new MisconfigurationError(`\`--node_rank\` must be in [0, ${numNodes - 1}] for \`--num_nodes ${numNodes}\`, got ${nodeRank}.`);
  if (o.masterPort !== undefined && (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535)) {
    throw new MisconfigurationError(`\`--master_port\` must be an integer in [1, 65535], got ${showValue(o.masterPort)}.`);
  }
  if (numNodes > 1 && o.masterPort === undefined) {
    throw new MisconfigurationError(`\`--master_port\` (or MASTER_PORT) is required with \`--num_nodes ${numNodes}\`: every node must meet rank 0 at the same port.`);
  }
  if (typeof o.script !== 'string' || o.script.length === 0) throw new MisconfigurationError('`script` must name the JavaScript file the workers run.');
  const graceMs = o.graceMs ?? 5000;
  if (!(graceMs >= 0)) throw new MisconfigurationError(`\`graceMs\` must be ≥ 0, got ${showValue(graceMs)}.`);
  return {
    devices,
    numNodes,
    nodeRank,
    masterAddr: o.masterAddr || '127.0.0.1',
    masterPort: o.masterPort,
    script: o.script,
    args: o.args ?? [],
    nodeArgs: o.nodeArgs ?? [],
    env: o.env ?? process.env,
    graceMs,
    forwardSignals: o.forwardSignals ?? true,
    stdio: o.stdio ?? 'inherit',
    onSpawn: o.onSpawn,
    log: o.log ?? ((line: string) => console.error(line)),
  };
}

/** A TCP port that was free on `host` a moment ago (Lightning's `find_free_network_port`). */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function describeExit(w: WorkerExit): string {
  const how = w.signal ? `was killed by ${w.signal}` : `exited with code ${w.code}`;
  return `rank ${w.rank} (local rank ${w.localRank}, pid ${w.pid}) ${how}`;
}

function exitCodeOf(w: WorkerExit): number {
  if (w.signal) return 128 + (os.constants.signals[w.signal] ?? 1);
  return w.code && w.code > 0 ? w.code : 1;
}

/**
 * Starts `devices` workers of this node (Lightning's subprocess launcher, torchrun's
 * agent), each with RANK, LOCAL_RANK, NODE_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT and LIGHTCLIP_NUM_THREADS (the cores divided among the workers, so the BLAS
 * threads of N workers do not oversubscribe the machine). When a worker fails, the others
 * get SIGTERM, then SIGKILL after `graceMs`; the result names the failed rank. Workers are
 * connected by an IPC channel, so `watchLauncher()` in a worker ends it when the launcher
 * dies, even by SIGKILL: no orphans.
 *
 * @example
 * ```ts
 * const r = await launchDdp({ devices: 2, script: 'dist/train.js', args: ['--strategy', 'ddp'] });
 * process.exitCode = r.exitCode;
 * ```
 */
export async function launchDdp(options: LaunchOptions): Promise<LaunchResult> {
  const o = validateLaunchOptions(options);
  const masterPort = o.masterPort ?? (await findFreePort(o.masterAddr));
  const worldSize = o.devices * o.numNodes;
  const threads = Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / o.devices));
  const children: { exit: WorkerExit; proc: ChildProcess; done: boolean }[] = [];
  let failure: WorkerExit | null = null;
  let interrupted: NodeJS.Signals | null = null;
  let killTimer: NodeJS.Timeout | null = null;

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (!c.done) c.proc.kill(signal);
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const c of children) if (!c.done) c.proc.kill('SIGKILL');
      }, o.graceMs);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    o.log(`lightclip-ddp: received ${signal}, stopping the workers of node ${o.nodeRank}.`);
    stopAll(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  if (o.forwardSignals) for (const s of signals) process.on(s, onSignal);

  try {
    await new Promise<void>((resolve) => {
      let remaining = o.devices;
      for (let local = 0; local < o.devices; local++) {
        const rank = o.nodeRank * o.devices + local;
        const env: Record<string, string | undefined> = {
          ...o.env,
          RANK: String(rank),
          LOCAL_RANK: String(local),
          NODE_RANK: String(o.nodeRank),
          WORLD_SIZE: String(worldSize),
          LOCAL_WORLD_SIZE: String(o.devices),
          MASTER_ADDR: o.masterAddr,
          MASTER_PORT: String(masterPort),
          LIGHTCLIP_NUM_THREADS: o.env.LIGHTCLIP_NUM_THREADS ?? String(threads),
          [LAUNCHER_ENV]: String(process.pid),
        };
        const out = o.stdio === 'pipe' ? 'pipe' : 'inherit';
        const proc = spawn(process.execPath, [...o.nodeArgs, o.script, ...o.args], { env, stdio: ['ignore', out, out, 'ipc'] });
        const entry = { exit: { rank, localRank: local, pid: proc.pid ?? -1, code: null, signal: null } as WorkerExit, proc, done: false };
        children.push(entry);
        const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
          if (entry.done) return;
          entry.done = true;
          entry.exit.code = code;
          entry.exit.signal = signal;
          if ((code !== 0 || signal) && !failure && !interrupted) {
            failure = entry.exit;
            o.log(`lightclip-ddp: ${describeExit(entry.exit)}; stopping the other workers of node ${o.nodeRank}.`);
            stopAll('SIGTERM');
          }
          if (--remaining === 0) resolve();
        };
        proc.once('exit', finish);
        proc.once('error', (err) => {
          o.log(`lightclip-ddp: could not start rank ${rank}: ${err.message}`);
          finish(127, null);
        });
        if (proc.pid !== undefined) o.onSpawn?.({ rank, localRank: local, pid: proc.pid, process: proc });
      }
    });
  } finally {
    if (killTimer) clearTimeout(killTimer);
    if (o.forwardSignals) for (const s of signals) process.off(s, onSignal);
  }
  const workers = children.map((c) => c.exit);
  const failed = failure as WorkerExit | null;
  if (interrupted) {
    return { exitCode: 128 + (os.constants.signals[interrupted] ?? 1), workers, failure: failed, message: `lightclip-ddp: node ${o.nodeRank} interrupted by ${interrupted}.` };
  }
  if (failed) {
    return { exitCode: exitCodeOf(failed), workers, failure: failed, message: `lightclip-ddp: the run failed on node ${o.nodeRank}: ${describeExit(failed)}.` };
  }
  return { exitCode: 0, workers, failure: null, message: `lightclip-ddp: node ${o.nodeRank}: all ${o.devices} worker(s) finished.` };
}

/**
 * Called in a worker: exits (code 1, with a message) as soon as the launcher that
 * started it is gone — its IPC channel closes, or the parent pid changes — so workers never
 * outlive their launcher. Does nothing outside `launchDdp` workers. Keeps nothing alive.
 */
export function watchLauncher(env: Env = process.env): void {
  const launcher = env[LAUNCHER_ENV];
  if (launcher === undefined || watching) return;
  watching = true;
  const gone = (): void => {
    console.error(`lightclip-ddp: rank ${env.RANK ?? '?'}: the launcher (pid ${launcher}) is gone; exiting.`);
    process.exit(1);
  };
  if (process.channel) {
    process.on('disconnect', gone);
    // A 'disconnect' listener refs the channel; unref it so a finished worker can still exit.
    process.channel.unref();
  }
  const timer = setInterval(() => {
    if (String(process.ppid) !== launcher) gone();
  }, 500);
  timer.unref();
}

let watching = false;

/** Flags of `--strategy ddp` as the CLIs parse them. */
export interface DdpFlags {
  devices?: number;
  numNodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

/** What a CLI should do with `--strategy ddp`: run as a worker here, or spawn the workers. */
export type LaunchPlan = { kind: 'worker'; environment: ClusterEnvironment } | { kind: 'spawn'; options: Omit<LaunchOptions, 'script' | 'args'> };

/**
 * Decides between running in this process (torchrun, srun, Kubeflow or `launchDdp` already
 * started one process per rank) and spawning the workers with {@link launchDdp}; flags win
 * over MASTER_ADDR / MASTER_PORT / NODE_RANK from the environment.
 * @throws MisconfigurationError when the flags disagree with the environment's world size.
 */
export function planDdpLaunch(flags: DdpFlags, env: Env = process.env): LaunchPlan {
  const ce = detectClusterEnvironment(env);
  if (ce.createsProcessesExternally) {
    const expected = (flags.devices ?? ce.worldSize) * (flags.numNodes ?? 1);
    if ((flags.devices !== undefined || flags.numNodes !== undefined) && expected !== ce.worldSize) {
      throw new MisconfigurationError(
        `\`--devices ${flags.devices ?? '?'}\` × \`--num_nodes ${flags.numNodes ?? 1}\` = ${expected} processes, but the ${ce.name} environment started ${ce.worldSize} (its world size). Make them agree (e.g. srun --ntasks-per-node=devices).`,
      );
    }
    return { kind: 'worker', environment: ce };
  }
  return {
    kind: 'spawn',
    options: {
      devices: flags.devices ?? 1,
      numNodes: flags.numNodes ?? 1,
      nodeRank: flags.nodeRank ?? ce.nodeRank,
      masterAddr: flags.masterAddr ?? ce.mainAddress,
      masterPort: flags.masterPort ?? ce.mainPort ?? undefined,
    },
  };
}
