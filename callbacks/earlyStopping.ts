import { Callback } from '../core/callback.js';
import { MisconfigurationError } from '../core/errors.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';
import { checkMode, improves, readMonitor, type MonitorMode } from './monitor.js';

/** Options of {@link EarlyStopping}, as Lightning's. */
export interface EarlyStoppingOptions {
  monitor: string;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Checks without improvement before stopping (default 3). */
  patience?: number;
  mode?: MonitorMode;
  /** A missing metric is an error (default true). */
  strict?: boolean;
  /** Stop when the metric becomes NaN or infinite (default true). */
  checkFinite?: boolean;
  /** Stop as soon as the metric reaches this value. */
  stoppingThreshold?: number | null;
  /** Stop as soon as the metric is worse than this value. */
  divergenceThreshold?: number | null;
  /** Check at the end of training epochs instead of after validation. */
  checkOnTrainEpochEnd?: boolean;
}

/** Stops training when a monitored metric stops improving (sets `trainer.shouldStop`). */
export class EarlyStopping extends Callback {
  readonly monitorsMetrics = true;
  readonly monitor: string;
  readonly mode: MonitorMode;
  readonly minDelta: number;
  readonly patience: number;
  waitCount = 0;
  stoppedEpoch = 0;
  bestScore: number | null = null;
  /** Why training stopped (null while running). */
  stoppingReason: string | null = null;
  private readonly o: Required<Omit<EarlyStoppingOptions, 'stoppingThreshold' | 'divergenceThreshold'>> & {
    stoppingThreshold: number | null;
    divergenceThreshold: number | null;
  };

  constructor(options: EarlyStoppingOptions) {
    super();
    if (!options || typeof options.monitor !== 'string' || options.monitor === '') {
      throw new MisconfigurationError('`EarlyStopping(monitor=...)` needs the name of a logged metric.');
    }
    this.monitor = options.monitor;
    this.mode = checkMode('EarlyStopping', options.mode ?? 'min');
    this.minDelta = Math.abs(options.minDelta ?? 0);
    this.patience = options.patience ?? 3;
    if (!Number.isInteger(this.patience) || this.patience < 0) {
      throw new MisconfigurationError(`\`EarlyStopping(patience=${options.patience})\` must be an integer ≥ 0.`);
    }
    this.o = {
      monitor: this.monitor,
      minDelta: this.minDelta,
      patience: this.patience,
      mode: this.mode,
      strict: options.strict ?? true,
      checkFinite: options.checkFinite ?? true,
      stoppingThreshold: options.stoppingThreshold ?? null,
      divergenceThreshold: options.divergenceThreshold ?? null,
      checkOnTrainEpochEnd: options.checkOnTrainEpochEnd ?? false,
    };
  }

  override get stateKey(): string {
    return this.generateStateKey({ monitor: this.monitor, mode: this.mode });
  }

  override async onValidationEnd(trainer: Trainer): Promise<void> {
    if (this.o.checkOnTrainEpochEnd || trainer.sanityChecking || trainer.stage !== 'fit') return;
    await this.check(trainer);
  }

  override async onTrainEpochEnd(trainer: Trainer): Promise<void> {
    if (this.o.checkOnTrainEpochEnd) await this.check(trainer);
  }

  private async check(trainer: Trainer): Promise<void> {
    const v = readMonitor('EarlyStopping', trainer, this.monitor, this.o.strict);
    if (v === null) return;
    const better = (a: number, b: number): boolean => (this.mode === 'min' ? a < b : a > b);
    let stop = false;
    if (this.o.checkFinite && !Number.isFinite(v)) {
      stop = true;
      this.stoppingReason = `Monitored metric ${this.monitor} = ${v} is not finite.`;
    } else if (this.o.stoppingThreshold !== null && (this.mode === 'min' ? v <= this.o.stoppingThreshold : v >= this.o.stoppingThreshold)) {
      stop = true;
      this.stoppingReason = `Stopping threshold reached: ${this.monitor} = ${v}.`;
    } else if (this.o.divergenceThreshold !== null && better(this.o.divergenceThreshold, v)) {
      stop = true;
      this.stoppingReason = `Divergence threshold exceeded: ${this.monitor} = ${v}.`;
    } else if (improves(v, this.bestScore, this.mode, this.minDelta)) {
      this.bestScore = v;
      this.waitCount = 0;
    } else {
      this.waitCount++;
      if (this.waitCount >= this.patience) {
        stop = true;
        this.stoppingReason = `Monitored metric ${this.monitor} did not improve in the last ${this.waitCount} records. Best score: ${this.bestScore}.`;
      }
    }
    // Under DDP each rank judges its own metric (unless logged with syncDist): one rank
    // wanting to stop stops every rank, as Lightning's reduce_boolean_decision(all=False).
    const anyRankStops = await trainer.strategy.reduceBooleanDecision(stop, { all: false });
    if (anyRankStops && !stop) this.stoppingReason = 'Another rank\'s EarlyStopping criterion was met.';
    if (anyRankStops) {
      trainer.shouldStop = true;
      this.stoppedEpoch = trainer.currentEpoch;
      if (trainer.isGlobalZero) console.log(`lightclip: EarlyStopping: ${this.stoppingReason}`);
    }
  }

  override stateDict(): Record<string, unknown> {
    return { waitCount: this.waitCount, stoppedEpoch: this.stoppedEpoch, bestScore: this.bestScore, patience: this.patience };
  }

  override loadStateDict(s: Record<string, unknown>): void {
    this.waitCount = Number(s.waitCount ?? 0);
    this.stoppedEpoch = Number(s.stoppedEpoch ?? 0);
    this.bestScore = (s.bestScore as number | null) ?? null;
  }
}

register('callback', 'early_stopping', (o) => new EarlyStopping(o as unknown as EarlyStoppingOptions), { description: 'stop when a monitored metric stops improving' });
