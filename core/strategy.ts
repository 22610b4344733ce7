import type { Tensor, Variable } from './tf.js';
import type { Parameter } from './nn/module.js';

/**
 * How a run is spread over processes (Lightning's `Strategy`). The Trainer asks it to set
 * up, to average gradients before each optimizer step, to gather and broadcast, and
 * whether this process is rank 0 (the only one that logs and writes checkpoints).
 * `SingleDeviceStrategy` is the identity; `strategies/ddp` implements the collectives.
 */
export abstract class Strategy {
  abstract get name(): string;
  /** This process's rank among all processes. */
  get globalRank(): number {
    return 0;
  }
  /** This process's rank on its node. */
  get localRank(): number {
    return 0;
  }
  get nodeRank(): number {
    return 0;
  }
  get worldSize(): number {
    return 1;
  }
  get isGlobalZero(): boolean {
    return this.globalRank === 0;
  }

  /** Connects to the other processes (called once at the start of a run). */
  async setup(): Promise<void> {}
  /** Makes every process start from rank 0's weights. */
  async broadcastParameters(_params: readonly Parameter[]): Promise<void> {}
  /** Makes every process start from rank 0's buffers (BatchNorm running statistics). */
  async broadcastBuffers(_buffers: readonly Variable[]): Promise<void> {}
  /** Averages `param.grad` across processes (before clipping and the optimizer step). */
  async reduceGradients(_params: readonly Parameter[]): Promise<void> {}
  /** Gathers `t` from every process along a new first axis... or returns it on one process. */
  async allGather(t: Tensor, _options: { syncGrads?: boolean } = {}): Promise<Tensor> {
    return t;
  }
  /** Sends rank 0's JSON value to every process. */
  async broadcast<T>(value: T): Promise<T> {
    return value;
  }
  /** Reduces metric values across processes. */
  async reduceMetrics(values: Record<string, number>, _ops: Record<string, 'mean' | 'sum' | 'max' | 'min'>): Promise<Record<string, number>> {
    return values;
  }
  /**
   * One decision for every process (Lightning's `reduce_boolean_decision`): with `all`,
   * true only if it is true on every rank, else true if it is true on any. Callbacks that
   * act collectively (a checkpoint save meets a barrier, a stop ends every rank's loop)
   * decide through this, so ranks whose local metrics differ cannot part ways and hang.
   */
  async reduceBooleanDecision(decision: boolean, _options: { all?: boolean } = {}): Promise<boolean> {
    return decision;
  }
  /** Waits until every process reaches the barrier. */
  async barrier(_name?: string): Promise<void> {}
  /** Shard of the data this process reads (DistributedSampler's rank/num_replicas). */
  get distributedSamplerKwargs(): { rank: number; worldSize: number } {
    return { rank: this.globalRank, worldSize: this.worldSize };
  }
  /** Disconnects at the end of a run; `error` is the failure that ended it, if any (told to the other ranks). */
  async teardown(_error?: unknown): Promise<void> {}
}

/** One process, one device: every collective is the identity. */
export class SingleDeviceStrategy extends Strategy {
  get name(): string {
    return 'single_device';
  }
}
