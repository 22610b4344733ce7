import { MisconfigurationError, showValue } from '../../core/errors.js';

/** Environment variables (process.env or a test's plain object). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Set by `launchDdp` in every worker it spawns (its value is the launcher's pid). */
export const LAUNCHER_ENV = 'LIGHTCLIP_DDP_LAUNCHER';

/**
 * Where a process sits in a distributed run and how to reach rank 0, as Lightning's
 * `ClusterEnvironment`s report it. `createsProcessesExternally` says whether something
 * else (torchrun, srun, Kubernetes, or lightclip's own launcher) already started one
 * process per rank; when false, the CLI must spawn the workers itself.
 */
export interface ClusterEnvironment {
  readonly name: 'lightning' | 'torchelastic' | 'kubeflow' | 'slurm' | 'mpi';
  readonly createsProcessesExternally: boolean;
  /** Host of rank 0 (MASTER_ADDR). */
  readonly mainAddress: string;
  /** Rendezvous port, or null when unset (single node: pick a free one). */
  readonly mainPort: number | null;
  readonly worldSize: number;
  readonly globalRank: number;
  readonly localRank: number;
  readonly nodeRank: number;
}

function intVar(env: Env, name: string, min: number, who: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new MisconfigurationError(`\`${name}\` must be an integer ≥ ${min}, got ${showValue(raw)} (${who}).`);
  return v;
}

function required(env: Env, name: string, min: number, who: string): number {
  const v = intVar(env, name, min, who);
  if (v === undefined) throw new MisconfigurationError(`\`${name}\` is not set, but ${who} sets it for every process.`);
  return v;
}

function port(env: Env, name: string, who: string): number | null {
  const v = intVar(env, name, 1, who);
  if (v !== undefined && v > 65535) throw new MisconfigurationError(`\`${name}\` must be a port in [1, 65535], got ${v} (${who}).`);
  return v ?? null;
}

/** Checks rank < world size and local rank ≤ rank, naming the variables. */
function checked(e: ClusterEnvironment, rankVar: string, sizeVar: string): ClusterEnvironment {
  if (e.globalRank >= e.worldSize) {
    throw new MisconfigurationError(`\`${rankVar}=${e.globalRank}\` must be less than \`${sizeVar}=${e.worldSize}\` (${e.name} environment).`);
  }
  if (e.localRank > e.globalRank) {
    throw new MisconfigurationError(`The local rank (${e.localRank}) cannot exceed \`${rankVar}=${e.globalRank}\` (${e.name} environment).`);
  }
  return e;
}

/**
 * lightclip's own launcher (Lightning's `LightningEnvironment`), also what a plain
 * `node train.js` sees: RANK / LOCAL_RANK / NODE_RANK / WORLD_SIZE / MASTER_ADDR /
 * MASTER_PORT when `launchDdp` started this process, otherwise one process of rank 0.
 */
export function lightningEnvironment(env: Env): ClusterEnvironment {
  const who = 'set by the DDP launcher';
  const worldSize = intVar(env, 'WORLD_SIZE', 1, who) ?? 1;
  const localRank = intVar(env, 'LOCAL_RANK', 0, who) ?? 0;
  const nodeRank = intVar(env, 'NODE_RANK', 0, who) ?? intVar(env, 'GROUP_RANK', 0, who) ?? 0;
  const globalRank = intVar(env, 'RANK', 0, who) ?? localRank;
  return checked(
    {
      name: 'lightning',
      createsProcessesExternally: env.LOCAL_RANK !== undefined,
      mainAddress: env.MASTER_ADDR || '127.0.0.1',
      mainPort: port(env, 'MASTER_PORT', who),
      worldSize,
      globalRank,
      localRank,
      nodeRank,
    },
    'RANK',
    'WORLD_SIZE',
  );
}

/** torchrun / torch.distributed.elastic: detected by TORCHELASTIC_RUN_ID, or RANK + GROUP_RANK + LOCAL_RANK + LOCAL_WORLD_SIZE. */
export function isTorchElastic(env: Env): boolean {
  return env.TORCHELASTIC_RUN_ID !== undefined || ['RANK', 'GROUP_RANK', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE'].every((k) => env[k] !== undefined);
}

/** torchrun's variables (Lightning's `TorchElasticEnvironment`). */
export function torchElasticEnvironment(env: Env): ClusterEnvironment {
  const who = 'torchrun';
  if (!env.MASTER_ADDR) throw new MisconfigurationError('`MASTER_ADDR` is not set, but torchrun sets it for every process.');
  return checked(
    {
      name: 'torchelastic',
      createsProcessesExternally: true,
      mainAddress: env.MASTER_ADDR,
      mainPort: port(env, 'MASTER_PORT', who),
      worldSize: required(env, 'WORLD_SIZE', 1, who),
      globalRank: required(env, 'RANK', 0, who),
      localRank: required(env, 'LOCAL_RANK', 0, who),
      nodeRank: intVar(env, 'GROUP_RANK', 0, who) ?? 0,
    },
    'RANK',
    'WORLD_SIZE',
  );
}

/** Kubeflow's PyTorchJob: KUBERNETES_PORT plus MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK (one process per pod). */
export function isKubeflow(env: Env): boolean {
  return env.KUBERNETES_PORT !== undefined && ['MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK'].every((k) => env[k] !== undefined);
}

/** Kubeflow's variables (Lightning's `KubeflowEnvironment`): each pod is one node running one process. */
export function kubeflowEnvironment(env: Env): ClusterEnvironment {
  const who = 'the Kubeflow PyTorchJob operator';
  const rank = required(env, 'RANK', 0, who);
  return checked(
    {
      name: 'kubeflow',
      createsProcessesExternally: true,
      mainAddress: env.MASTER_ADDR!,
      mainPort: port(env, 'MASTER_PORT', who),
      worldSize: required(env, 'WORLD_SIZE', 1, who),
      globalRank: rank,
      localRank: 0,
      nodeRank: rank,
    },
    'RANK',
    'WORLD_SIZE',
  );
}

/** Inside `srun` (SLURM_NTASKS set), but not an interactive `salloc`/`srun --pty bash` shell (Lightning's rule). */
export function isSlurm(env: Env): boolean {
  return env.SLURM_NTASKS !== undefined && !['bash', 'interactive'].includes(env.SLURM_JOB_NAME ?? '');
}

/**
 * Slurm's variables (Lightning's `SLURMEnvironment`): SLURM_NTASKS, SLURM_PROCID,
 * SLURM_LOCALID, SLURM_NODEID; rank 0's host is the first host of SLURM_NODELIST unless
 * MASTER_ADDR overrides it, and the port is MASTER_PORT or 15000 + the last four digits
 * of SLURM_JOB_ID (so concurrent jobs on one node do not collide), 12910 without a job id.
 */
export function slurmEnvironment(env: Env): ClusterEnvironment {
  const who = 'srun';
  const nodelist = env.SLURM_NODELIST ?? env.SLURM_JOB_NODELIST;
  const mainAddress = env.MASTER_ADDR || (nodelist ? slurmRootHost(nodelist) : '127.0.0.1');
  let mainPort = port(env, 'MASTER_PORT', who);
  if (mainPort === null) {
    const jobId = env.SLURM_JOB_ID ?? '';
    if (jobId !== '' && !/^\d+$/.test(jobId)) throw new MisconfigurationError(`\`SLURM_JOB_ID\` must be a number, got ${showValue(jobId)}.`);
    mainPort = jobId ? 15000 + Number(jobId.slice(-4)) : 12910;
  }
  return checked(
    {
      name: 'slurm',
      createsProcessesExternally: true,
      mainAddress,
      mainPort,
      worldSize: required(env, 'SLURM_NTASKS', 1, who),
      globalRank: required(env, 'SLURM_PROCID', 0, who),
      localRank: required(env, 'SLURM_LOCALID', 0, who),
      nodeRank: intVar(env, 'SLURM_NODEID', 0, who) ?? 0,
    },
    'SLURM_PROCID',
    'SLURM_NTASKS',
  );
}

/** Started by Open MPI's mpirun (OMPI_COMM_WORLD_* variables). */
export function isMpirun(env: Env): boolean {
  return env.OMPI_COMM_WORLD_RANK !== undefined && env.OMPI_COMM_WORLD_SIZE !== undefined;
}

/**
 * mpirun's variables (Lightning's `MPIEnvironment`): OMPI_COMM_WORLD_RANK / _SIZE /
 * _LOCAL_RANK / _NODE_RANK. The mpi backend needs no MASTER_ADDR/MASTER_PORT (MPI wires the
 * ranks); they are read when set, for the other backends.
 */
export function mpiEnvironment(env: Env): ClusterEnvironment {
  const who = 'mpirun';
  return checked(
    {
      name: 'mpi',
      createsProcessesExternally: true,
      mainAddress: env.MASTER_ADDR || '127.0.0.1',
      mainPort: port(env, 'MASTER_PORT', who),
      worldSize: required(env, 'OMPI_COMM_WORLD_SIZE', 1, who),
      globalRank: required(env, 'OMPI_COMM_WORLD_RANK', 0, who),
      localRank: intVar(env, 'OMPI_COMM_WORLD_LOCAL_RANK', 0, who) ?? 0,
      nodeRank: intVar(env, 'OMPI_COMM_WORLD_NODE_RANK', 0, who) ?? 0,
    },
    'OMPI_COMM_WORLD_RANK',
    'OMPI_COMM_WORLD_SIZE',
  );
}

/**
 * Picks the environment as Lightning's `_choose_cluster_environment` does (Slurm, then
 * torchrun, then Kubeflow, else lightclip's own), except that a worker started by
 * `launchDdp` always uses the launcher's variables, even inside a Slurm allocation or a
 * Kubernetes pod whose variables it inherited.
 * @throws MisconfigurationError naming the variable that is missing or invalid.
 */
export function detectClusterEnvironment(env: Env = process.env): ClusterEnvironment {
  if (env[LAUNCHER_ENV] !== undefined) return lightningEnvironment(env);
  if (isSlurm(env)) return slurmEnvironment(env);
  if (isMpirun(env)) return mpiEnvironment(env);
  if (isTorchElastic(env)) return torchElasticEnvironment(env);
  if (isKubeflow(env)) return kubeflowEnvironment(env);
  return lightningEnvironment(env);
}

/**
 * Expands a Slurm host list: `node[01-03,07],gpu7` → node01, node02, node03, node07, gpu7.
 * Zero padding follows the range's first bound; several bracket groups in one name expand
 * as a product (`r[1-2]n[1-2]` → r1n1, r1n2, r2n1, r2n2).
 * @throws MisconfigurationError on unbalanced brackets or malformed ranges.
 */
export function expandSlurmNodelist(nodelist: string): string[] {
  const hosts: string[] = [];
  for (const item of splitTopLevel(nodelist.trim())) hosts.push(...expandItem(item, nodelist));
  return hosts;
}

/** The first host of a Slurm host list: where rank 0 runs. */
export function slurmRootHost(nodelist: string): string {
  const first = splitTopLevel(nodelist.trim())[0];
  const hosts = first === undefined ? [] : expandItem(first, nodelist);
  if (hosts.length === 0) throw new MisconfigurationError(`\`SLURM_NODELIST\` names no host, got ${showValue(nodelist)}.`);
  return hosts[0]!;
}

function bad(nodelist: string, why: string): MisconfigurationError {
  return new MisconfigurationError(`\`SLURM_NODELIST\` is malformed (${why}): ${showValue(nodelist)}. Expected e.g. "node[01-03,07],gpu7".`);
}

/** Splits at commas outside brackets. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') depth++;
    else if (s[i] === ']') depth--;
    else if (s[i] === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw bad(s, 'unbalanced or nested brackets');
  }
  if (depth !== 0) throw bad(s, 'unclosed bracket');
  out.push(s.slice(start));
  return out.map((x) => x.trim()).filter((x) => x.length > 0);
}

function expandItem(item: string, nodelist: string): string[] {
  const open = item.indexOf('[');
  if (open < 0) return [item];
  const close = item.indexOf(']', open);
  if (close < 0) throw bad(nodelist, 'unclosed bracket');
  const prefix = item.slice(0, open);
  const rest = expandItem(item.slice(close + 1), nodelist);
  const out: string[] = [];
  for (const part of item.slice(open + 1, close).split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw bad(nodelist, `${showValue(part)} is not a number or a range a-b`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw bad(nodelist, `range ${part} runs backwards`);
    const width = m[1]!.length;
    for (let v = lo; v <= hi; v++) for (const r of rest) out.push(`${prefix}${String(v).padStart(width, '0')}${r}`);
  }
  return out;
}
