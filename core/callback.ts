import type { Tensor } from './tf.js';
import type { LightningModule } from './module.js';
import type { Trainer } from './trainer.js';
import type { OptimizerLike } from './types.js';

/** Tensor-valued callback state (EMA weights...), saved next to the JSON state. */
export type TensorState = Record<string, Tensor>;

/**
 * Base class of callbacks: every hook is a no-op taking `(trainer, module, ...)`, as in
 * Lightning. Callbacks are how features are added (checkpointing, early stopping,
 * progress, EMA...). Each hook fires on callbacks before the module.
 *
 * `stateKey` identifies the callback's state in checkpoints: the class name, plus the
 * settings when several instances can coexist (e.g. two ModelCheckpoints).
 */
export abstract class Callback {
  get stateKey(): string {
    return this.constructor.name;
  }

  /** Builds a state key from settings, as Lightning's `_generate_state_key`. */
  protected generateStateKey(settings: Record<string, unknown>): string {
    return `${this.constructor.name}${JSON.stringify(settings)}`;
  }

  /** Called when fit, validate, test or predict begins (before anything else). */
  setup(_trainer: Trainer, _module: LightningModule, _stage: string): void | Promise<void> {}
  /** Called when fit, validate, test or predict ends. */
  teardown(_trainer: Trainer, _module: LightningModule, _stage: string): void | Promise<void> {}
  /** Called when fit begins. */
  onFitStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when fit ends. */
  onFitEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation sanity check starts. */
  onSanityCheckStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation sanity check ends. */
  onSanityCheckEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when training begins. */
  onTrainStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when training ends. */
  onTrainEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the train epoch begins. */
  onTrainEpochStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the train epoch ends (after validation of that epoch). */
  onTrainEpochEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the train batch begins. */
  onTrainBatchStart(_trainer: Trainer, _module: LightningModule, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the train batch ends. `outputs` holds the step's numbers (`loss`...). */
  onTrainBatchEnd(_trainer: Trainer, _module: LightningModule, _outputs: Record<string, number>, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the validation loop begins. */
  onValidationStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation loop ends. */
  onValidationEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation epoch begins. */
  onValidationEpochStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation epoch ends. */
  onValidationEpochEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the validation batch begins. */
  onValidationBatchStart(_trainer: Trainer, _module: LightningModule, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the validation batch ends. */
  onValidationBatchEnd(_trainer: Trainer, _module: LightningModule, _outputs: unknown, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the test loop begins. */
  onTestStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the test loop ends. */
  onTestEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the test epoch begins. */
  onTestEpochStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the test epoch ends. */
  onTestEpochEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the test batch begins. */
  onTestBatchStart(_trainer: Trainer, _module: LightningModule, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the test batch ends. */
  onTestBatchEnd(_trainer: Trainer, _module: LightningModule, _outputs: unknown, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called when the predict loop begins. */
  onPredictStart(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the predict loop ends. */
  onPredictEnd(_trainer: Trainer, _module: LightningModule): void | Promise<void> {}
  /** Called when the predict batch ends. */
  onPredictBatchEnd(_trainer: Trainer, _module: LightningModule, _outputs: unknown, _batch: unknown, _batchIdx: number): void | Promise<void> {}
  /** Called before the loss of a training step is differentiated (synchronous: it runs inside the gradient tape). */
  onBeforeBackward(_trainer: Trainer, _module: LightningModule, _loss: Tensor): void {}
  /** Called after gradients were accumulated into `param.grad`. */
  onAfterBackward(_trainer: Trainer, _module: LightningModule): void {}
  /** Called before gradient clipping and the optimizer step. */
  onBeforeOptimizerStep(_trainer: Trainer, _module: LightningModule, _optimizer: OptimizerLike): void | Promise<void> {}
  /** Called before gradients are zeroed (synchronous: it runs inside the gradient tape). */
  onBeforeZeroGrad(_trainer: Trainer, _module: LightningModule, _optimizer: OptimizerLike): void {}
  /** Called when a checkpoint is being built; `checkpoint` is its JSON part. */
  onSaveCheckpoint(_trainer: Trainer, _module: LightningModule, _checkpoint: Record<string, unknown>): void | Promise<void> {}
  /** Called when a checkpoint is being restored. */
  onLoadCheckpoint(_trainer: Trainer, _module: LightningModule, _checkpoint: Record<string, unknown>): void | Promise<void> {}
  /** Called when an exception interrupts a run. */
  onException(_trainer: Trainer, _module: LightningModule, _error: unknown): void | Promise<void> {}

  /** JSON-serialisable state saved in checkpoints under `stateKey`. */
  stateDict(): Record<string, unknown> {
    return {};
  }
  loadStateDict(_state: Record<string, unknown>): void {}
  /** Tensor state saved in checkpoints (e.g. EMA weights); the caller disposes nothing. */
  tensorStateDict(): TensorState {
    return {};
  }
  /** Restores tensor state; the tensors are owned by the caller (copy what you keep). */
  loadTensorStateDict(_state: TensorState): void {}
}
