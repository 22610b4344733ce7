import { tf, type Tensor } from './tf.js';
import { Module, type Parameter } from './nn/module.js';
import { MisconfigurationError } from './errors.js';
import type { Trainer } from './trainer.js';
import type { Callback } from './callback.js';
import type { LogOptions } from './connectors/results.js';
import type { LRSchedulerLike, OptimizerConfig, OptimizerLike, TrainingStepOutput } from './types.js';

/**
 * Lightning's `LightningModule`: a `Module` that also says how to train itself.
 *
 * Implement `trainingStep` (and `validationStep`, `testStep`, `predictStep` as needed) and
 * `configureOptimizers`; override any hook below. Register it by name with
 * `@registerClass('model', 'mlp')` so `--model mlp` and config files can find it.
 *
 * One difference from PyTorch: tfjs differentiates a *function*, not a retained graph, so
 * with automatic optimization the Trainer runs `trainingStep` inside the gradient tape, and
 * with manual optimization `manualBackward` takes a loss function.
 *
 * @example
 * ```ts
 * @registerClass('model', 'mlp')
 * class Mlp extends LightningModule<{ x: Tensor; y: Tensor }> {
 *   net = this.registerModule('net', new Sequential([new Linear(4, 16), new ReLU(), new Linear(16, 2)]));
 *   trainingStep(batch) { const loss = F.crossEntropy(this.net.forward(batch.x), batch.y); this.log('train_loss', loss); return loss; }
 *   configureOptimizers() { return new AdamW(this.parameters(), { lr: 1e-3 }); }
 * }
 * ```
 */
/** An optimizer as seen by a manually optimizing module (Lightning's `LightningOptimizer`). */
export interface ManualOptimizer {
  readonly optimizer: OptimizerLike;
  /** Averages gradients across processes, then steps. */
  step(): Promise<void>;
  zeroGrad(): void;
}

/**
 * What the Trainer hands {@link LightningModule.trainingGradients}: the module computes its
 * gradients (possibly in several tapes, around awaits), the Trainer keeps everything else.
 * Every gradient added through it is scaled by `scale` (1/accumulateGradBatches).
 */
export interface GradientContext {
  /** The factor applied to every gradient added through this context. */
  readonly scale: number;
  /**
   * Announces the batch loss before any gradient is added: runs `onBeforeZeroGrad` →
   * `optimizerZeroGrad` (first batch of an accumulation window) → `onBeforeBackward(loss)`.
   * Call it once, before `backward`/`accumulateGrad`; `backward` without it announces itself.
   */
  beforeBackward(loss: Tensor): void;
  /**
   * Differentiates `lossFn` on the tape and adds `scale`× its gradient to every trainable
   * parameter. If the loss was not announced yet, `lossFn`'s value is the batch loss and is
   * announced on the tape before it is differentiated. Returns its (unscaled) value; the caller disposes it.
   */
  backward(lossFn: () => Tensor): Tensor;
  /** Adds `scale`× `grad` to `param.grad` (takes ownership of `grad`). */
  accumulateGrad(param: Parameter, grad: Tensor): void;
}

export abstract class LightningModule<B = unknown> extends Module {
  /** When false, `trainingStep` drives backward and the optimizers itself (`manualBackward`, `optimizers()`). */
  automaticOptimization = true;
  /** Hyperparameters: saved in checkpoints and logged at fit start. */
  hparams: Record<string, unknown> = {};
  /** The Trainer running this module (null outside a run). */
  trainer: Trainer | null = null;

  /** Records hyperparameters (Lightning's `save_hyperparameters`). */
  saveHyperparameters(hparams: Record<string, unknown>): void {
    this.hparams = { ...this.hparams, ...hparams };
  }

  /**
   * One training step. Return the loss, `{ loss, ... }`, or nothing to skip the batch.
   * With automatic optimization it must be synchronous (it runs inside tfjs's gradient
   * tape); with manual optimization it may be async (await collectives, optimizer steps).
   */
  abstract trainingStep(batch: B, batchIdx: number): TrainingStepOutput | Promise<TrainingStepOutput>;

  /**
   * Optional, automatic optimization only: computes the batch's gradients itself, for steps
   * whose backward cannot be one synchronous tape (gradient caching, features all-gathered
   * across processes). When overridden, the Trainer calls it in place of `trainingStep` inside
   * the optimizer closure and keeps everything else Lightning's: zero-grad and the backward
   * hooks (through `grad`), `onAfterBackward`, accumulation, gradient sync, clipping,
   * `optimizerStep`, LR schedulers. Return the loss (for logging) as `trainingStep` would,
   * or nothing to skip the batch before announcing a loss. Not overridden (the default), the
   * Trainer runs `trainingStep` on the tape instead.
   */
  trainingGradients(_batch: B, _batchIdx: number, _grad: GradientContext): Promise<TrainingStepOutput> {
    throw new MisconfigurationError('`trainingGradients` is not implemented by this module (the Trainer runs `trainingStep` on the tape).');
  }

  /** Whether this module computes its own gradients ({@link trainingGradients} is overridden). */
  get computesOwnGradients(): boolean {
    return this.trainingGradients !== LightningModule.prototype.trainingGradients;
  }

  /** One validation step; log metrics with `this.log`. */
  validationStep(_batch: B, _batchIdx: number): TrainingStepOutput {
    return undefined;
  }

  /** One test step; log metrics with `this.log`. */
  testStep(_batch: B, _batchIdx: number): TrainingStepOutput {
    return undefined;
  }

  /** One prediction step; its result is collected by `trainer.predict`. */
  predictStep(_batch: B, _batchIdx: number): unknown {
    return undefined;
  }

  /** Returns the optimizer(s) and optional LR scheduler(s), in any of Lightning's forms. */
  abstract configureOptimizers(): OptimizerConfig;

  /** Callbacks this module needs (merged with the Trainer's; same type replaces). */
  configureCallbacks(): Callback[] {
    return [];
  }

  // ---- hooks (each a no-op by default) ----
  /** Called when fit begins. */
  onFitStart(): void {}
  /** Called when fit ends. */
  onFitEnd(): void {}
  /** Called when training begins. */
  onTrainStart(): void {}
  /** Called when training ends. */
  onTrainEnd(): void {}
  /** Called when the train epoch begins. */
  onTrainEpochStart(): void {}
  /** Called when the train epoch ends. */
  onTrainEpochEnd(): void {}
  /** Called when the train batch begins; return -1 to skip the rest of the epoch. */
  onTrainBatchStart(_batch: B, _batchIdx: number): void | number {}
  /** Called when the train batch ends. */
  onTrainBatchEnd(_outputs: Record<string, number>, _batch: B, _batchIdx: number): void {}
  /** Called when the validation loop begins. */
  onValidationStart(): void {}
  /** Called when the validation loop ends. */
  onValidationEnd(): void {}
  /** Called when the validation epoch begins. */
  onValidationEpochStart(): void {}
  /** Called when the validation epoch ends. */
  onValidationEpochEnd(): void {}
  /** Called when the validation batch begins. */
  onValidationBatchStart(_batch: B, _batchIdx: number): void {}
  /** Called when the validation batch ends. */
  onValidationBatchEnd(_outputs: unknown, _batch: B, _batchIdx: number): void {}
  /** Called when the test epoch begins. */
  onTestEpochStart(): void {}
  /** Called when the test epoch ends. */
  onTestEpochEnd(): void {}
  /** Called before the loss is differentiated. */
  onBeforeBackward(_loss: Tensor): void {}
  /** Called after gradients were accumulated into `param.grad`. */
  onAfterBackward(): void {}
  /** Called before gradient clipping and the optimizer step. */
  onBeforeOptimizerStep(_optimizer: OptimizerLike): void {}
  /** Called before gradients are zeroed. */
  onBeforeZeroGrad(_optimizer: OptimizerLike): void {}
  /** Called when a checkpoint is built: add entries to its JSON part. */
  onSaveCheckpoint(_checkpoint: Record<string, unknown>): void {}
  /** Called when a checkpoint is restored. */
  onLoadCheckpoint(_checkpoint: Record<string, unknown>): void {}

  // ---- optimization ----
  /**
   * Runs `closure` (step, backward, clipping) then the optimizer step. Override to act
   * after each step (the CLIP module clamps its logit scale here).
   */
  async optimizerStep(_epoch: number, _batchIdx: number, optimizer: OptimizerLike, closure: () => Promise<void>): Promise<void> {
    await closure();
    optimizer.step();
  }

  /** Zeroes the gradients of `optimizer`'s parameters. */
  optimizerZeroGrad(_epoch: number, _batchIdx: number, optimizer: OptimizerLike): void {
    optimizer.zeroGrad();
  }

  /** Clips gradients as the Trainer's `gradientClipVal`/`gradientClipAlgorithm` say. */
  configureGradientClipping(optimizer: OptimizerLike, clipVal: number | null, algorithm: 'norm' | 'value'): void {
    if (clipVal === null || clipVal <= 0) return;
    this.clipGradients(optimizer, clipVal, algorithm);
  }

  /** Clips the gradients of `optimizer`'s parameters by global norm or by value. */
  clipGradients(optimizer: OptimizerLike, clipVal: number, algorithm: 'norm' | 'value'): number | null {
    const params = optimizer.paramGroups.flatMap((g) => g.params);
    if (!this.trainer) throw new Error('clipGradients() needs a Trainer');
    return this.trainer.clipGradients(params, clipVal, algorithm);
  }

  /** Steps one scheduler (override for schedulers that take a metric). */
  lrSchedulerStep(scheduler: LRSchedulerLike): void {
    scheduler.step();
  }

  /**
   * The optimizers from `configureOptimizers`, wrapped for manual optimization: their
   * `step()` is async because it first averages gradients across processes (DDP).
   */
  optimizers(): ManualOptimizer[] {
    const trainer = this.requireTrainer('optimizers()');
    return trainer.optimizers.map((o) => ({
      optimizer: o,
      step: async () => {
        await trainer.strategy.reduceGradients(o.paramGroups.flatMap((g) => g.params));
        o.step();
        trainer.onManualOptimizerStep();
      },
      zeroGrad: () => o.zeroGrad(),
    }));
  }

  /** The LR schedulers from `configureOptimizers`. */
  lrSchedulers(): LRSchedulerLike[] {
    return this.requireTrainer('lrSchedulers()').lrSchedulerConfigs.map((c) => c.scheduler);
  }

  /**
   * Differentiates `lossFn` and accumulates the gradients into the parameters (manual
   * optimization). Returns the loss value; the caller disposes it.
   */
  manualBackward(lossFn: () => Tensor): Tensor {
    return this.requireTrainer('manualBackward()').manualBackward(lossFn);
  }

  // ---- logging ----
  /**
   * Logs a metric. Defaults as Lightning: in `trainingStep` per step, in validation/test
   * and epoch hooks per epoch (mean over batches, weighted by `batchSize`).
   */
  log(name: string, value: number | Tensor, options: LogOptions = {}): void {
    const trainer = this.trainer;
    if (!trainer) return; // outside a run, as Lightning: logging is a no-op
    const v = typeof value === 'number' ? value : scalarOf(value, name);
    trainer.logMetric(name, v, options);
  }

  /** Logs several metrics with the same options. */
  logDict(values: Record<string, number | Tensor>, options: LogOptions = {}): void {
    for (const [k, v] of Object.entries(values)) this.log(k, v, options);
  }

  /** Gathers a tensor from every process along a new first axis (the input on one process). */
  allGather(t: Tensor, options: { syncGrads?: boolean } = {}): Promise<Tensor> {
    return this.requireTrainer('allGather()').strategy.allGather(t, options);
  }

  /** Global step (optimizer steps taken), 0 outside a run. */
  get globalStep(): number {
    return this.trainer?.globalStep ?? 0;
  }

  /** Current epoch, 0 outside a run. */
  get currentEpoch(): number {
    return this.trainer?.currentEpoch ?? 0;
  }

  private requireTrainer(what: string): Trainer {
    if (!this.trainer) throw new MisconfigurationError(`\`${what}\` can only be called while a Trainer runs this module.`);
    return this.trainer;
  }
}

function scalarOf(t: Tensor, name: string): number {
  if (t.size !== 1) {
    throw new MisconfigurationError(`\`log(${JSON.stringify(name)}, value)\` needs a scalar, got a tensor of shape [${t.shape.join(', ')}]`);
  }
  // The CPU backends are synchronous, so reading the value costs a copy, not a stall.
  return tf.tidy(() => t.dataSync()[0]!);
}
