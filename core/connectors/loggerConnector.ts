import type { Logger } from '../logger.js';
import type { Trainer } from '../trainer.js';
import { ResultCollection, type LogOptions, type MetricsSplit } from './results.js';

/**
 * Routes `log()` calls to the right `ResultCollection` (train, validation, test) and
 * pushes reduced metrics to the loggers (rank 0 only), the progress bar and
 * `trainer.callbackMetrics` (what ModelCheckpoint and EarlyStopping monitor).
 */
export class LoggerConnector {
  readonly trainResults: ResultCollection;
  readonly valResults: ResultCollection;
  readonly testResults: ResultCollection;
  /** Latest value of every metric, for callbacks. */
  callbackMetrics: Record<string, number> = {};
  /** Latest values shown by the progress bar. */
  progressBarMetrics: Record<string, number> = {};
  /** Everything sent to the loggers so far (latest value per key). */
  loggedMetrics: Record<string, number> = {};

  constructor(private readonly trainer: Trainer) {
    const reducer = (values: Record<string, number>, ops: Record<string, 'mean' | 'sum' | 'max' | 'min'>) => trainer.strategy.reduceMetrics(values, ops);
    this.trainResults = new ResultCollection(reducer);
    this.valResults = new ResultCollection(reducer);
    this.testResults = new ResultCollection(reducer);
  }

  /** Records a `log()` call from the current hook. */
  log(name: string, value: number, options: LogOptions): void {
    const t = this.trainer;
    const hook = t.currentHookName;
    const results = t.evaluating ? (t.testing ? this.testResults : this.valResults) : this.trainResults;
    results.log(hook, name, value, options);
  }

  private get loggers(): Logger[] {
    return this.trainer.strategy.isGlobalZero ? this.trainer.loggers : [];
  }

  /** Sends metrics to every logger (rank 0). */
  logMetrics(metrics: Record<string, number>, step: number): void {
    if (Object.keys(metrics).length === 0) return;
    Object.assign(this.loggedMetrics, metrics);
    for (const logger of this.loggers) logger.logMetrics(metrics, step);
  }

  private absorb(split: MetricsSplit): void {
    Object.assign(this.callbackMetrics, split.callback);
    Object.assign(this.progressBarMetrics, split.progBar);
  }

  /** After each training batch: step values to callbacks/progress bar, and to loggers every `logEveryNSteps`. */
  async onTrainStepEnd(globalStep: number): Promise<void> {
    const split = await this.trainResults.stepMetrics();
    this.absorb(split);
    const n = this.trainer.logEveryNSteps;
    if (globalStep > 0 && globalStep !== this.lastLoggedStep && globalStep % n === 0) {
      this.lastLoggedStep = globalStep;
      this.logMetrics({ ...split.logger, epoch: this.trainer.currentEpoch }, globalStep);
    }
  }

  private lastLoggedStep = -1;

  /** End of a training epoch: epoch reductions of the training metrics. */
  async onTrainEpochEnd(globalStep: number, epoch: number): Promise<void> {
    const split = await this.trainResults.epochMetrics();
    this.absorb(split);
    this.logMetrics(Object.keys(split.logger).length ? { ...split.logger, epoch } : {}, globalStep);
  }

  /** Values the module logged in its own `onTrainEpochEnd`. */
  async flushModuleEpochEndLogs(globalStep: number, epoch: number): Promise<void> {
    await this.onTrainEpochEnd(globalStep, epoch);
  }

  /** End of validation/test: reduced metrics to callbacks, progress bar and loggers. */
  updateEvalEpochMetrics(split: MetricsSplit): void {
    this.absorb(split);
    const t = this.trainer;
    if (Object.keys(split.logger).length) this.logMetrics({ ...split.logger, epoch: t.currentEpoch }, t.globalStep);
  }

  /** Flushes every logger. */
  save(): void {
    for (const logger of this.loggers) logger.save();
  }
}
