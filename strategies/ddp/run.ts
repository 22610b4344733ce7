import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MisconfigurationError } from '../../core/errors.js';
import { launchDdp, type LaunchOptions } from './launcher.js';

/**
 * `node dist/strategies/ddp/run.js [flags] script.js [script args]` — lightclip's
 * torchrun: starts `--devices` workers of this node running `script.js`, and on several
 * machines one launcher per node:
 *
 * ```
 * node dist/strategies/ddp/run.js --devices 2 --num_nodes 2 --node_rank 0 --master_addr 10.0.0.1 --master_port 29500 train.js ...
 * node dist/strategies/ddp/run.js --devices 2 --num_nodes 2 --node_rank 1 --master_addr 10.0.0.1 --master_port 29500 train.js ...
 * ```
 *
 * Flags not given fall back to NODE_RANK / MASTER_ADDR / MASTER_PORT. `--ddp_backend
 * auto|gloo|mpi|zmq` and `--ddp_init file:///shared/dir` reach the workers as
 * LIGHTCLIP_DDP_BACKEND / LIGHTCLIP_DDP_INIT (DDPStrategy's defaults). The exit code is
 * 0 when every worker succeeded, else the failed worker's (128 + signal when killed).
 */

const FLAGS = ['devices', 'num_nodes', 'node_rank', 'master_addr', 'master_port', 'grace_seconds', 'ddp_backend', 'ddp_init'] as const;
type Flag = (typeof FLAGS)[number];

/** Parses the launcher's flags (everything before the script) and returns launch options. */
export function parseRunArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): LaunchOptions {
  const values: Partial<Record<Flag, string>> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) break;
    const eq = a.indexOf('=');
    const name = (eq >= 0 ? a.slice(2, eq) : a.slice(2)).replace(/-/g, '_');
    if (!(FLAGS as readonly string[]).includes(name)) {
      throw new MisconfigurationError(`Unknown launcher flag \`${a}\`. Available: ${FLAGS.map((f) => `--${f}`).join(', ')}, then the script and its arguments.`);
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new MisconfigurationError(`\`--${name}\` needs a value.`);
    values[name as Flag] = value;
  }
  const script = argv[i];
  if (script === undefined) throw new MisconfigurationError('Usage: run.js [--devices N] [--num_nodes N] [--node_rank R] [--master_addr HOST] [--master_port PORT] [--ddp_backend auto|gloo|mpi|zmq] [--ddp_init file:///dir] script.js [args...]');
  const num = (flag: Flag, fallback?: string): number | undefined => {
    const raw = values[flag] ?? fallback;
    if (raw === undefined || raw === '') return undefined;
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new MisconfigurationError(`\`--${flag}\` must be a number, got ${JSON.stringify(raw)}.`);
    return v;
  };
  const grace = num('grace_seconds');
  const workerEnv: Record<string, string | undefined> = { ...env };
  if (values.ddp_backend !== undefined) {
    if (!['auto', 'gloo', 'mpi', 'zmq'].includes(values.ddp_backend)) throw new MisconfigurationError(`\`--ddp_backend\` must be auto, gloo, mpi or zmq, got ${JSON.stringify(values.ddp_backend)}.`);
    workerEnv.LIGHTCLIP_DDP_BACKEND = values.ddp_backend;
  }
  if (values.ddp_init !== undefined) workerEnv.LIGHTCLIP_DDP_INIT = values.ddp_init;
  return {
    env: workerEnv,
    devices: num('devices') ?? 1,
    numNodes: num('num_nodes') ?? 1,
    nodeRank: num('node_rank', env.NODE_RANK) ?? 0,
    masterAddr: values.master_addr ?? env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: num('master_port', env.MASTER_PORT),
    graceMs: grace === undefined ? undefined : grace * 1000,
    script: path.resolve(script),
    args: argv.slice(i + 1),
  };
}

/** Runs the launcher CLI; resolves to the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const result = await launchDdp(parseRunArgs(argv));
    if (result.exitCode !== 0) console.error(result.message);
    return result.exitCode;
  } catch (err) {
    if (err instanceof MisconfigurationError) {
      console.error(`lightclip-ddp: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** Whether node was started with this file (through a symlink too: npm's bin links, a linked node_modules). */
function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  const self = fileURLToPath(import.meta.url);
  if (path.resolve(script) === self) return true;
  try {
    return realpathSync(script) === realpathSync(self);
  } catch {
    return false;
  }
}

if (isMain()) {
  process.exitCode = await runCli(process.argv.slice(2));
}
