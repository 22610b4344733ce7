import { tf } from '../tf.js';
import { callCallbackHooks, callCallbackHooksOn, callModuleHook } from '../hooks/call.js';
import type { Trainer } from '../trainer.js';
import { runEvaluationLoop } from './evaluationLoop.js';
import { limitBatches } from './limits.js';
import { runAutomaticOptimization, runManualOptimization, type StepOutputs } from './optimization.js';

/** The fit loop's progress, saved in checkpoints so a resumed run continues exactly. */
export interface FitLoopState {
  epoch: number;
  globalStep: number;
  /** Batches of `epoch` already trained (resume skips them). */
  batchesDoneInEpoch: number;
  /** Batches accumulated since the last optimizer step. */
  batchesInWindow: number;
  /** The epoch's batches are done (saved from an epoch-end hook). */
  epochBatchesDone: boolean;
  /** Epoch-interval LR schedulers already stepped for `epoch`. */
  epochSchedulersStepped: boolean;
}

/**
 * Lightning's `_FitLoop` + `_TrainingEpochLoop`:
 *
 * ```
 * while not done (maxEpochs, maxSteps, shouldStop):
 *     onTrainEpochStart
 *     for batch in train loader (skipping batches done before a resume):
 *         onTrainBatchStart → optimization (automatic or manual) → onTrainBatchEnd
 *         log step metrics every `logEveryNSteps`; validate when `valCheckInterval` says
 *     validate at epoch end (every `checkValEveryNEpoch`)
 *     log epoch metrics; step epoch schedulers
 *     onTrainEpochEnd: callbacks, module, then monitoring callbacks (checkpoint, early stopping)
 * ```
 */
export class FitLoop {
  epoch = 0;
  globalStep = 0;
  batchesDoneInEpoch = 0;
  batchesInWindow = 0;
  private epochBatchesDone = false;
  private epochSchedulersStepped = false;
  private skipBatches = 0;

  constructor(private readonly trainer: Trainer) {}

  get done(): boolean {
    const t = this.trainer;
    if (t.maxSteps >= 0 && this.globalStep >= t.maxSteps) return true;
    if (t.maxEpochs >= 0 && this.epoch >= t.maxEpochs) return true;
    return t.shouldStop && this.epoch >= t.minEpochs;
  }

  stateDict(): FitLoopState {
    return {
      epoch: this.epoch,
      globalStep: this.globalStep,
      batchesDoneInEpoch: this.batchesDoneInEpoch,
      batchesInWindow: this.batchesInWindow,
      epochBatchesDone: this.epochBatchesDone,
      epochSchedulersStepped: this.epochSchedulersStepped,
    };
  }

  loadStateDict(s: FitLoopState): void {
    this.globalStep = s.globalStep;
    if (s.epochBatchesDone) {
      // Saved at the end of an epoch: finish its bookkeeping and start the next one.
      // Same count as the normal path (`onEpochEnd` steps with epoch + 1).
      if (!s.epochSchedulersStepped) this.stepSchedulers('epoch', s.epoch + 1);
      this.epoch = s.epoch + 1;
      this.skipBatches = 0;
      this.batchesInWindow = 0;
    } else {
      this.epoch = s.epoch;
      this.skipBatches = s.batchesDoneInEpoch;
      this.batchesInWindow = s.batchesInWindow;
    }
  }

  async run(): Promise<void> {
    while (!this.done) {
      await this.runEpoch();
    }
  }

  private async runEpoch(): Promise<void> {
    const t = this.trainer;
    const loader = t.trainDataloader!;
    loader.setEpoch?.(this.epoch);
    this.epochBatchesDone = false;
    this.epochSchedulersStepped = false;
    const skip = this.skipBatches;
    this.skipBatches = 0;
    this.batchesDoneInEpoch = skip;
    if (skip === 0) t.loggerConnector.trainResults.reset();
    await callCallbackHooks(t, 'onTrainEpochStart');
    callModuleHook(t, 'onTrainEpochStart');

    const maxBatches = limitBatches(t.limitTrainBatches, loader.length);
    const knownCount = loader.length !== undefined ? Math.min(maxBatches, loader.length) : undefined;
    t.numTrainingBatches = knownCount ?? Infinity;
    this.warnIfLogIntervalTooLong(knownCount);
    const it = loader[Symbol.asyncIterator]();
    let idx = 0;
    let next = await it.next();
    while (!next.done && idx < skip) {
      tf.dispose(next.value as tf.TensorContainer);
      idx++;
      next = idx < skip || idx < maxBatches ? await it.next() : { done: true as const, value: undefined };
    }
    let stopped = false;
    let validatedAtLast = false;
    while (!next.done && idx < maxBatches) {
      const batch = next.value;
      let isLast: boolean;
      let pending: Promise<IteratorResult<unknown>> | null = null;
      if (knownCount !== undefined) {
        isLast = idx + 1 >= knownCount;
        // Ask for the next batch now, so its decoding overlaps this step.
        if (!isLast) pending = it.next();
      } else {
        next = idx + 1 < maxBatches ? await it.next() : { done: true as const, value: undefined };
        isLast = next.done === true;
      }
      let stop: boolean;
      try {
        stop = await this.trainBatch(batch, idx, isLast);
      } catch (err) {
        // The step's error is the run's error: the batch being read ahead is dropped, and
        // whatever it fails with later (its loader is shut down by teardown) is not reported.
        if (pending) pending.then((r) => tf.dispose(r.value as tf.TensorContainer), () => {});
        tf.dispose(batch as tf.TensorContainer);
        throw err;
      }
      tf.dispose(batch as tf.TensorContainer);
      idx++;
      if (this.shouldValidate(idx, knownCount, isLast)) {
        await t.runValidation();
        validatedAtLast = isLast;
      }
      if (stop || this.done) {
        stopped = !isLast;
        if (pending) void pending.then((r) => tf.dispose(r.value as tf.TensorContainer), () => {});
        break;
      }
      if (knownCount !== undefined) next = pending ? await pending : { done: true as const, value: undefined };
    }
    if (!next.done || stopped) await it.return?.();
    this.epochBatchesDone = true;
    if (!validatedAtLast && !stopped && this.validatesAtEpochEnd()) await t.runValidation();
    await this.onEpochEnd();
  }

  /** One batch; returns true to end the epoch early. */
  private async trainBatch(batch: unknown, batchIdx: number, isLast: boolean): Promise<boolean> {
    const t = this.trainer;
    await callCallbackHooks(t, 'onTrainBatchStart', batch, batchIdx);
    if (callModuleHook(t, 'onTrainBatchStart', batch, batchIdx) === -1) return true;
    let outputs: StepOutputs;
    if (t.lightningModule.automaticOptimization) {
      const firstInWindow = this.batchesInWindow === 0;
      const shouldStep = this.batchesInWindow + 1 >= t.accumulateGradBatches || isLast;
      const r = await runAutomaticOptimization(t, batch, batchIdx, firstInWindow, shouldStep);
      outputs = r.outputs;
      this.batchesInWindow = shouldStep ? 0 : this.batchesInWindow + 1;
      if (r.stepped) {
        this.globalStep++;
        this.stepSchedulers('step', this.globalStep);
      }
    } else {
      outputs = await runManualOptimization(t, batch, batchIdx);
    }
    // Counted before onTrainBatchEnd: a checkpoint saved there must not replay this batch.
    this.batchesDoneInEpoch = batchIdx + 1;
    await t.loggerConnector.onTrainStepEnd(this.globalStep);
    await callCallbackHooks(t, 'onTrainBatchEnd', outputs, batch, batchIdx);
    callModuleHook(t, 'onTrainBatchEnd', outputs, batch, batchIdx);
    return t.shouldStop && this.epoch >= t.minEpochs;
  }

  private warnedLogInterval = false;

  /**
   * Lightning's warning when the logging interval is longer than an epoch: such a run
   * (a 6-step run with the default 50) would send no step metric to the loggers. Also
   * warns when `maxSteps` ends the whole run before the first logging step.
   */
  private warnIfLogIntervalTooLong(batchesPerEpoch: number | undefined): void {
    const t = this.trainer;
    if (this.warnedLogInterval || t.loggers.length === 0 || !t.isGlobalZero) return;
    this.warnedLogInterval = true;
    const n = t.logEveryNSteps;
    if (batchesPerEpoch !== undefined && batchesPerEpoch < n) {
      console.warn(
        `lightclip: The number of training batches (${batchesPerEpoch}) is smaller than the logging interval \`logEveryNSteps=${n}\` (\`--log_every_n_steps\`). Set a lower value if you want to see logs for the training epoch.`,
      );
    } else if (t.maxSteps >= 0 && t.maxSteps < n) {
      console.warn(`lightclip: \`maxSteps=${t.maxSteps}\` ends the run before the first logging step (\`logEveryNSteps=${n}\`, \`--log_every_n_steps\`): no step metrics will be logged.`);
    }
  }

  /** Counts a manual `optimizer.step()` as a global step. */
  onManualOptimizerStep(): void {
    this.globalStep++;
  }

  private hasValidation(): boolean {
    const t = this.trainer;
    return t.valDataloader !== null && t.limitValBatches !== 0 && (this.epoch + 1) % t.checkValEveryNEpoch === 0;
  }

  private validatesAtEpochEnd(): boolean {
    return this.hasValidation() && this.trainer.valCheckInterval === null;
  }

  private shouldValidate(batchesDone: number, knownCount: number | undefined, isLast: boolean): boolean {
    const interval = this.trainer.valCheckInterval;
    if (!this.hasValidation()) return false;
    if (interval === null) return isLast && knownCount !== undefined;
    if (interval < 1) {
      if (knownCount === undefined) return false;
      const every = Math.max(1, Math.floor(knownCount * interval));
      return batchesDone % every === 0 || isLast;
    }
    return batchesDone % interval === 0;
  }

  private async onEpochEnd(): Promise<void> {
    const t = this.trainer;
    await t.loggerConnector.onTrainEpochEnd(this.globalStep, this.epoch);
    this.stepSchedulers('epoch', this.epoch + 1);
    this.epochSchedulersStepped = true;
    // Monitoring callbacks (checkpointing, early stopping) run last so they can see
    // metrics logged in the module's own `onTrainEpochEnd` (as in Lightning's fit_loop).
    const monitoring = t.callbacks.filter((cb) => isMonitoring(cb));
    const others = t.callbacks.filter((cb) => !isMonitoring(cb));
    await callCallbackHooksOn(t, others, 'onTrainEpochEnd');
    callModuleHook(t, 'onTrainEpochEnd');
    await t.loggerConnector.flushModuleEpochEndLogs(this.globalStep, this.epoch);
    await callCallbackHooksOn(t, monitoring, 'onTrainEpochEnd');
    this.epoch++;
    this.batchesDoneInEpoch = 0;
    this.epochBatchesDone = false;
  }

  private stepSchedulers(interval: 'step' | 'epoch', count: number): void {
    const t = this.trainer;
    if (!t.lightningModule.automaticOptimization) return; // manual: the module steps them
    for (const cfg of t.lrSchedulerConfigs) {
      if (cfg.interval === interval && count % cfg.frequency === 0) {
        callModuleHook(t, 'lrSchedulerStep', cfg.scheduler);
      }
    }
  }
}

function isMonitoring(cb: object): boolean {
  return 'monitorsMetrics' in cb && (cb as { monitorsMetrics: boolean }).monitorsMetrics === true;
}
