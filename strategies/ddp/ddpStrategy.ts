import { MisconfigurationError, showValue } from '../../core/errors.js';
import type { Parameter } from '../../core/nn/module.js';
import { register } from '../../core/registry.js';
import { Strategy } from '../../core/strategy.js';
import { tf, type Tensor } from '../../core/tf.js';
import { detectClusterEnvironment, type ClusterEnvironment, type Env } from './environment.js';
import { DistributedError, describeRanks } from './errors.js';
import { watchLauncher } from './launcher.js';
import { chooseBackend, connectProcessGroup, type BackendChoice } from './backend.js';
import { DEFAULT_BUCKET_CAP_MB, type ProcessGroupLike } from './group.js';
import { timeoutFromEnv } from './processGroup.js';

/** Options of {@link DDPStrategy}. */
export interface DDPStrategyOptions {
  /** Processes per node (`--devices`): checked against the environment's world size. */
  devices?: number;
  /** Nodes (`--num_nodes`). */
  numNodes?: number;
  /** Collective timeout in seconds (default LIGHTCLIP_DDP_TIMEOUT, else 300). */
  timeoutSeconds?: number;
  /** Gradient bucket size in MB (default 25, as PyTorch DDP). */
  bucketCapMb?: number;
  /** Address this rank's peer socket binds on (default LIGHTCLIP_DDP_HOST, else the route to MASTER_ADDR). */
  host?: string;
  /** `auto` (default: LIGHTCLIP_DDP_BACKEND, else mpi under mpirun, gloo when built, else zmq), `gloo`, `mpi` or `zmq` (Lightning's `process_group_backend`). */
  backend?: string;
  /** `file:///shared/dir`: meet through a shared filesystem instead of MASTER_ADDR:MASTER_PORT (gloo; LIGHTCLIP_DDP_INIT). */
  initMethod?: string;
  /** Where the start-up line (`ddp backend: ...`, rank 0 only) goes; default `console.log`. */
  log?: (line: string) => void;
  /** Environment to read ranks from (default `process.env`). */
  env?: Env;
  /** Use this environment instead of detecting one. */
  environment?: ClusterEnvironment;
}

type MetricOp = 'mean' | 'sum' | 'max' | 'min';

/**
 * Distributed data parallel (Lightning's `DDPStrategy`): one process per device, each
 * training the same model on its own shard of every global batch. Rank 0's weights are
 * broadcast at the start, gradients are averaged (one bucketed all-reduce per optimizer
 * step, before clipping and the step), so every rank takes the same step and the weights
 * stay identical. Ranks come from the cluster environment (lightclip's launcher, torchrun,
 * Slurm, Kubeflow); collectives run over a process group of the chosen backend (Gloo,
 * Open MPI, or lightclip's zeromq layer: see `backend.ts`).
 *
 * @example
 * ```ts
 * // in each worker started by launchDdp / run.js / torchrun / srun:
 * const trainer = new Trainer({ strategy: 'ddp', maxEpochs: 10 });
 * ```
 * @throws MisconfigurationError (constructor) when `devices × numNodes` disagrees with the
 *   environment or the process was not started by a launcher.
 */
export class DDPStrategy extends Strategy {
  readonly environment: ClusterEnvironment;
  private readonly timeoutMs: number;
  private readonly bucketCapMb: number;
  private readonly host: string | undefined;
  private readonly env: Env;
  private pg: ProcessGroupLike | null = null;
  /** The backend `setup` connects with (resolved from `auto` in the constructor). */
  readonly backendChoice: BackendChoice;
  private readonly initMethod: string | undefined;
  private readonly log: (line: string) => void;

  constructor(options: DDPStrategyOptions = {}) {
    super();
    this.env = options.env ?? process.env;
    const t = options.timeoutSeconds;
    if (t !== undefined && !(typeof t === 'number' && t > 0)) throw new MisconfigurationError(`\`timeoutSeconds\` must be a number > 0, got ${showValue(t)}.`);
    this.timeoutMs = t !== undefined ? t * 1000 : timeoutFromEnv(this.env);
    const cap = options.bucketCapMb ?? DEFAULT_BUCKET_CAP_MB;
    if (!(typeof cap === 'number' && cap > 0)) throw new MisconfigurationError(`\`bucketCapMb\` must be a number > 0, got ${showValue(cap)}.`);
    this.bucketCapMb = cap;
    this.host = options.host;
    const ce = options.environment ?? detectClusterEnvironment(this.env);
    this.environment = ce;
    if (options.devices !== undefined || options.numNodes !== undefined) {
      const devices = options.devices ?? 1;
      const nodes = options.numNodes ?? 1;
      if (devices * nodes !== ce.worldSize) {
        throw new MisconfigurationError(
          ce.worldSize === 1 && !ce.createsProcessesExternally
            ? `\`--strategy ddp --devices ${devices} --num_nodes ${nodes}\` needs ${devices * nodes} processes, but this one was not started by a DDP launcher (WORLD_SIZE is unset). Start the script through launchDdp (train.ts does), \`node dist/strategies/ddp/run.js --devices ${devices} script.js\`, torchrun or srun.`
            : `\`--devices ${devices}\` × \`--num_nodes ${nodes}\` = ${devices * nodes} processes, but the ${ce.name} environment has a world size of ${ce.worldSize}.`,
        );
      }
    }
    this.backendChoice = chooseBackend(options.backend, this.env, options.numNodes ?? 1);
    if (ce.worldSize > 1 && ce.mainPort === null && this.backendChoice.backend !== 'mpi' && !(options.initMethod ?? this.env.LIGHTCLIP_DDP_INIT)) {
      throw new MisconfigurationError(`\`MASTER_PORT\` must be set when WORLD_SIZE=${ce.worldSize} (${ce.name} environment): every rank meets rank 0 there.`);
    }
    this.initMethod = options.initMethod ?? (this.env.LIGHTCLIP_DDP_INIT || undefined);
    this.log = options.log ?? ((line: string) => console.log(line));
    watchLauncher(this.env);
  }

  get name(): string {
    return 'ddp';
  }
  override get globalRank(): number {
    return this.environment.globalRank;
  }
  override get localRank(): number {
    return this.environment.localRank;
  }
  override get nodeRank(): number {
    return this.environment.nodeRank;
  }
  override get worldSize(): number {
    return this.environment.worldSize;
  }

  /** The connected process group (after `setup`). */
  get processGroup(): ProcessGroupLike {
    if (!this.pg) throw new Error('DDPStrategy: the process group is not connected (call setup() first).');
    return this.pg;
  }

  /** Joins the process group (rendezvous at MASTER_ADDR:MASTER_PORT). */
  override async setup(): Promise<void> {
    if (this.pg) return;
    const ce = this.environment;
    const choice = this.backendChoice;
    this.pg = await connectProcessGroup(choice.backend, {
      rank: ce.globalRank,
      worldSize: ce.worldSize,
      masterAddr: ce.mainAddress,
      masterPort: ce.mainPort ?? 0,
      timeoutMs: this.timeoutMs,
      host: this.host,
      initMethod: this.initMethod,
      env: this.env,
    });
    if (ce.globalRank === 0) {
      if (choice.warning) console.error(choice.warning);
      this.log(`ddp backend: ${this.pg.description}, ${ce.worldSize} process${ce.worldSize === 1 ? '' : 'es'}`);
    }
  }

  /** Assigns rank 0's parameter values on every rank (after checking every rank has the same parameter shapes). */
  override async broadcastParameters(params: readonly Parameter[]): Promise<void> {
    if (this.worldSize === 1) return;
    const pg = this.processGroup;
    const shapes = params.map((p) => p.shape);
    const rank0 = (await pg.broadcast<number[][] | null>(this.globalRank === 0 ? shapes : null, 0)) ?? [];
    const i = shapes.findIndex((s, k) => JSON.stringify(s) !== JSON.stringify(rank0?.[k]));
    if (rank0.length !== shapes.length || i >= 0) {
      throw new DistributedError(
        `broadcastParameters: rank ${this.globalRank}'s model differs from rank 0's (${rank0.length} vs ${shapes.length} parameters${i >= 0 ? `; parameter ${i} is [${shapes[i]}] here, [${rank0[i] ?? ''}] on rank 0` : ''}): every rank must build the same model.`,
        [this.globalRank],
      );
    }
    const flat = new Float32Array(params.reduce((s, p) => s + p.size, 0));
    if (this.globalRank === 0) {
      let off = 0;
      for (const p of params) {
        flat.set(float32Data(p.variable, 'parameter'), off);
        off += p.size;
      }
    }
    await pg.broadcast(flat, 0);
    if (this.globalRank === 0) return;
    let off = 0;
    for (const p of params) {
      const values = flat.subarray(off, off + p.size);
      tf.tidy(() => p.variable.assign(tf.tensor(values, p.shape, 'float32')));
      off += p.size;
    }
  }

  /** Assigns rank 0's buffer values (BatchNorm running statistics, counters) on every rank. */
  override async broadcastBuffers(buffers: readonly tf.Variable[]): Promise<void> {
    if (this.worldSize === 1 || buffers.length === 0) return;
    const flat = new Float32Array(buffers.reduce((n, b) => n + b.size, 0));
    if (this.globalRank === 0) {
      let off = 0;
      for (const b of buffers) {
        flat.set(b.dtype === 'float32' ? (b.dataSync() as Float32Array) : Float32Array.from(b.dataSync() as ArrayLike<number>), off);
        off += b.size;
      }
    }
    await this.processGroup.broadcast(flat, 0);
    if (this.globalRank === 0) return;
    let off = 0;
    for (const b of buffers) {
      const values = flat.subarray(off, off + b.size);
      tf.tidy(() => b.assign(b.dtype === 'float32' ? tf.tensor(values, b.shape, 'float32') : tf.cast(tf.tensor(values, b.shape, 'float32'), b.dtype)));
      off += b.size;
    }
  }

  /**
   * Averages `param.grad` over the ranks in one bucketed all-reduce (frozen parameters are
   * skipped). A trainable parameter without a gradient here contributes zeros (every rank
   * must send the same layout) and keeps a null gradient only if it has none on every rank,
   * so optimizers skip it exactly as they would on one process.
   */
  override async reduceGradients(all: readonly Parameter[]): Promise<void> {
    if (this.worldSize === 1) return;
    // Frozen parameters (a locked image tower) have no gradient on any rank: don't ship their zeros.
    const params = all.filter((p) => p.requiresGrad);
    // Copies: dataSync() may return the backend's own storage.
    const grads = params.map((p) => (p.grad ? Float32Array.from(float32Data(p.grad, 'gradient')) : new Float32Array(p.size)));
    const present = Float32Array.from(params, (p) => (p.grad ? 1 : 0));
    await this.processGroup.allReduceMany([...grads, present], 'mean', { bucketCapMb: this.bucketCapMb });
    params.forEach((p, i) => {
      if (present[i]! === 0) return;
      const g = tf.tensor(grads[i]!, p.shape, 'float32');
      p.grad?.dispose();
      p.grad = g;
    });
  }

  /**
   * Gathers `t` from every rank, stacked along a new first axis (`[worldSize, ...t.shape]`),
   * as Lightning's `all_gather`. Shapes must match (see {@link allGatherConcat} for batches
   * of different sizes). The slice of this rank is `t` itself, so it keeps its gradient
   * (open_clip's `gather_with_grad=False` plus local features).
   * @throws MisconfigurationError for `syncGrads: true`: tfjs cannot run a collective in the backward pass.
   */
  override async allGather(t: Tensor, options: { syncGrads?: boolean } = {}): Promise<Tensor> {
    checkNoSyncGrads(options);
    if (this.worldSize === 1) return tf.expandDims(t, 0);
    const parts = await this.processGroup.allGather(Float32Array.from(float32Data(t, 'tensor')));
    parts.forEach((p, r) => {
      if (p.length !== t.size) throw new DistributedError(`allGather: rank ${r} has ${p.length} elements, rank ${this.globalRank} has ${t.size} (shape [${t.shape}]): shapes must match; use allGatherConcat for batches of different sizes.`, [r]);
    });
    return tf.tidy(() => tf.stack(parts.map((p, r) => (r === this.globalRank ? t : tf.tensor(p, t.shape, t.dtype)))));
  }

  /**
   * Gathers `t` from every rank and concatenates along axis 0 (`[Σ batch, ...]`), as
   * open_clip gathers image/text features; batch sizes may differ, trailing dims must not.
   */
  async allGatherConcat(t: Tensor, options: { syncGrads?: boolean } = {}): Promise<Tensor> {
    checkNoSyncGrads(options);
    if (t.rank === 0) throw new MisconfigurationError('`allGatherConcat` needs a tensor of rank ≥ 1 (it concatenates along axis 0); use allGather for scalars.');
    if (this.worldSize === 1) return tf.clone(t);
    const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const parts = await this.processGroup.allGather(Float32Array.from(float32Data(t, 'tensor')));
    parts.forEach((p, r) => {
      if (row === 0 ? p.length !== 0 : p.length % row !== 0) {
        throw new DistributedError(`allGatherConcat: rank ${r} sent ${p.length} elements, not a whole number of rows of shape [${t.shape.slice(1)}]: trailing dimensions must match.`, [r]);
      }
    });
    return tf.tidy(() =>
      tf.concat(parts.map((p, r) => (r === this.globalRank ? t : tf.tensor(p, [row === 0 ? 0 : p.length / row, ...t.shape.slice(1)], t.dtype))), 0),
    );
  }

  /** Sends rank 0's value (JSON, or a Float32Array in place) to every rank. */
  override async broadcast<T>(value: T): Promise<T> {
    if (this.worldSize === 1) return value;
    return this.processGroup.broadcast(value, 0);
  }

  /** Reduces `log(..., {syncDist: true})` values over the ranks; every rank must sync the same keys. */
  override async reduceMetrics(values: Record<string, number>, ops: Record<string, MetricOp>): Promise<Record<string, number>> {
    if (this.worldSize === 1) return values;
    const keys = Object.keys(values).sort();
    const mine = { keys, values: keys.map((k) => encodeNumber(values[k]!)) };
    const all = await this.processGroup.allGatherObject(mine);
    const differ = all.map((a, r) => (JSON.stringify(a.keys) === JSON.stringify(keys) ? -1 : r)).filter((r) => r >= 0);
    if (differ.length) {
      throw new DistributedError(
        `\`log(..., { syncDist: true })\`: ${describeRanks(differ)} synced [${all[differ[0]!]!.keys.join(', ')}] while rank ${this.globalRank} synced [${keys.join(', ')}]: every rank must log the same syncDist keys.`,
        differ,
      );
    }
    const out: Record<string, number> = {};
    keys.forEach((k, i) => {
      const xs = all.map((a) => decodeNumber(a.values[i]!));
      const op = ops[k] ?? 'mean';
      out[k] = op === 'max' ? Math.max(...xs) : op === 'min' ? Math.min(...xs) : xs.reduce((s, x) => s + x, 0) / (op === 'mean' ? xs.length : 1);
    });
    return out;
  }

  /** True on every rank (`all`, the default) or on any rank; the same answer everywhere. */
  override async reduceBooleanDecision(decision: boolean, options: { all?: boolean } = {}): Promise<boolean> {
    if (this.worldSize === 1) return decision;
    const votes = await this.processGroup.allGatherObject(decision);
    return options.all === false ? votes.some(Boolean) : votes.every(Boolean);
  }

  /** Waits until every rank reaches a barrier of the same name. */
  override async barrier(name = 'barrier'): Promise<void> {
    if (this.worldSize === 1) return;
    await this.processGroup.barrier(name);
  }

  /** Leaves the process group: a goodbye when the run succeeded, at once (abort) after a failure. */
  override async teardown(error?: unknown): Promise<void> {
    const pg = this.pg;
    this.pg = null;
    if (error !== undefined) await pg?.abort();
    else await pg?.close();
  }
}

function checkNoSyncGrads(options: { syncGrads?: boolean }): void {
  if (options.syncGrads) {
    throw new MisconfigurationError(
      '`allGather(t, { syncGrads: true })` is not supported by the ddp strategy: tfjs cannot run a collective inside the backward pass. Gather without it: this rank\'s slice keeps its gradient (open_clip\'s default, `gather_with_grad=False`).',
    );
  }
}

/** Float32 values of a tensor (int32 and bool are converted; exact below 2^24). */
function float32Data(t: Tensor, what: string): Float32Array {
  if (t.dtype === 'float32') return t.dataSync() as Float32Array;
  if (t.dtype === 'int32' || t.dtype === 'bool') return Float32Array.from(t.dataSync() as Int32Array | Uint8Array);
  throw new MisconfigurationError(`The ddp strategy can only communicate float32, int32 or bool tensors; this ${what} is ${t.dtype}.`);
}

/** JSON has no NaN/Infinity: carry them as strings. */
function encodeNumber(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

function decodeNumber(x: number | string): number {
  return typeof x === 'number' ? x : Number(x);
}

register('strategy', 'ddp', (options) => new DDPStrategy((options ?? {}) as DDPStrategyOptions), {
  description: 'distributed data parallel: one process per device, gradients averaged over Gloo, Open MPI or the zeromq layer',
});
