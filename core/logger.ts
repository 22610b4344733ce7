/**
 * Base class of experiment loggers (TensorBoard, CSV...). The Trainer calls
 * `logHyperparams` once at fit start, `logMetrics` every `logEveryNSteps` steps and at
 * epoch ends, `save` after validation and `finalize` at the end. Only rank 0 logs.
 */
export abstract class Logger {
  /** Short name, used in paths (`tensorboard`, `csv`). */
  abstract get name(): string;
  /** Version folder (`version_3`); the logger picks the next free one when not given. */
  abstract get version(): string | number;
  /** The directory this run writes to (`<root>/lightning_logs/version_3`). */
  abstract get logDir(): string;

  /** Records scalar metrics at `step`. */
  abstract logMetrics(metrics: Record<string, number>, step: number): void;
  /** Records the run's hyperparameters (and optional final metrics for the hparams view). */
  abstract logHyperparams(params: Record<string, unknown>, metrics?: Record<string, number>): void;

  /** Flushes buffered records to disk. */
  save(): void {}
  /** Flushes and closes; `status` is 'success', 'failed' or 'interrupted'. */
  finalize(_status: 'success' | 'failed' | 'interrupted'): void {
    this.save();
  }
}
