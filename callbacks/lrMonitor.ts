import { Callback } from '../core/callback.js';
import { MisconfigurationError } from '../core/errors.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';

/** Options of {@link LearningRateMonitor}. */
export interface LearningRateMonitorOptions {
  /** 'step' (every `logEveryNSteps`), 'epoch', or null (each scheduler's own interval). */
  loggingInterval?: 'step' | 'epoch' | null;
  /** Also log momentum / beta1. */
  logMomentum?: boolean;
  /** Also log weight decay. */
  logWeightDecay?: boolean;
}

/**
 * Logs the learning rate of every optimizer and parameter group (Lightning's
 * `LearningRateMonitor`): `lr-AdamW`, or `lr-AdamW/pg1`, `lr-AdamW/pg2` with several
 * groups, or the scheduler's `name`. Values are also put in `callbackMetrics`.
 */
export class LearningRateMonitor extends Callback {
  readonly loggingInterval: 'step' | 'epoch' | null;
  private readonly logMomentum: boolean;
  private readonly logWeightDecay: boolean;
  /** Every logged value, for inspection: name → [step, lr][]. */
  readonly history: Record<string, Array<[number, number]>> = {};

  constructor(options: LearningRateMonitorOptions = {}) {
    super();
    const i = options.loggingInterval ?? null;
    if (i !== null && i !== 'step' && i !== 'epoch') {
      throw new MisconfigurationError(`\`LearningRateMonitor(loggingInterval=${JSON.stringify(i)})\` must be 'step', 'epoch' or null.`);
    }
    this.loggingInterval = i;
    this.logMomentum = options.logMomentum ?? false;
    this.logWeightDecay = options.logWeightDecay ?? false;
  }

  override onTrainBatchStart(trainer: Trainer): void {
    if (this.loggingInterval === 'epoch') return;
    if (trainer.globalStep % trainer.logEveryNSteps !== 0) return;
    this.logLrs(trainer, 'step');
  }

  override onTrainEpochStart(trainer: Trainer): void {
    if (this.loggingInterval === 'step') return;
    this.logLrs(trainer, 'epoch');
  }

  private logLrs(trainer: Trainer, interval: 'step' | 'epoch'): void {
    const metrics: Record<string, number> = {};
    trainer.optimizers.forEach((opt, oi) => {
      const sched = trainer.lrSchedulerConfigs.find((c) => c.optimizerIndex === oi);
      if (this.loggingInterval === null && sched && sched.interval !== interval) return;
      if (this.loggingInterval === null && !sched && interval === 'step') return;
      const base = sched?.name ?? `lr-${opt.constructor.name}${trainer.optimizers.length > 1 ? `-${oi}` : ''}`;
      const groups = opt.paramGroups;
      groups.forEach((group, gi) => {
        const g = group as { lr: number; momentum?: unknown; betas?: unknown; weightDecay?: unknown };
        const name = groups.length > 1 ? `${base}/pg${gi + 1}` : base;
        metrics[name] = g.lr;
        if (this.logMomentum) {
          const m = typeof g.momentum === 'number' ? g.momentum : Array.isArray(g.betas) ? Number(g.betas[0]) : undefined;
          if (m !== undefined) metrics[`${name}-momentum`] = m;
        }
        if (this.logWeightDecay && typeof g.weightDecay === 'number') metrics[`${name}-weight_decay`] = g.weightDecay;
      });
    });
    for (const [k, v] of Object.entries(metrics)) (this.history[k] ??= []).push([trainer.globalStep, v]);
    Object.assign(trainer.callbackMetrics, metrics);
    trainer.loggerConnector.logMetrics(metrics, trainer.globalStep);
  }
}

register('callback', 'lr_monitor', (o) => new LearningRateMonitor(o as LearningRateMonitorOptions), { description: 'log learning rates' });
