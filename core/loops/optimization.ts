import { tf, type Tensor } from '../tf.js';
import { MisconfigurationError } from '../errors.js';
import { callCallbackHooks, callModuleHook, callTapeHooks } from '../hooks/call.js';
import type { GradientContext, LightningModule } from '../module.js';
import type { Parameter } from '../nn/module.js';
import type { Trainer } from '../trainer.js';
import type { TrainingStepOutput } from '../types.js';

/** Numbers a training step produced (`loss` and any numeric extras), for callbacks. */
export type StepOutputs = Record<string, number>;

/**
 * Runs `lossFn` on tfjs's gradient tape and adds d(loss)/d(param) to every trainable
 * parameter's `grad`. `beforeBackward` runs on the tape right after the loss exists, so
 * hooks see the loss before it is differentiated (Lightning's order). Returns the loss
 * value, or null when `lossFn` returned null (the batch is skipped, nothing accumulated).
 */
export function tapeBackward(
  module: LightningModule,
  lossFn: () => Tensor | null,
  beforeBackward: (loss: Tensor) => void = () => {},
): Tensor | null {
  const params = module.parameters().filter((p) => p.requiresGrad);
  let skipped = false;
  if (params.length === 0) {
    throw new MisconfigurationError('The module has no trainable parameter: every parameter has `requiresGrad = false`.');
  }
  const { value, grads } = tf.variableGrads(() => {
    const loss = lossFn();
    if (loss === null) {
      skipped = true;
      // variableGrads insists on a connection to some variable; this zero is discarded.
      return tf.mul(tf.sum(params[0]!.variable), 0) as tf.Scalar;
    }
    if (loss.rank !== 0) throw new MisconfigurationError(`The training loss must be a scalar, got shape [${loss.shape.join(', ')}].`);
    beforeBackward(loss);
    return loss as tf.Scalar;
  }, params.map((p) => p.variable));
  if (skipped) {
    tf.dispose(grads);
    value.dispose();
    return null;
  }
  for (const p of params) {
    const g = grads[p.variable.name];
    if (g) p.accumulateGrad(g);
  }
  return value;
}

function lossOf(out: TrainingStepOutput): Tensor | null {
  if (out === null || out === undefined) return null;
  if (out instanceof tf.Tensor) return out;
  if (typeof out === 'object' && 'loss' in out && out.loss instanceof tf.Tensor) return out.loss;
  throw new MisconfigurationError('`trainingStep` must return a loss tensor, `{ loss, ... }`, or nothing (to skip the batch).');
}

function numericExtras(out: TrainingStepOutput): StepOutputs {
  const extras: StepOutputs = {};
  if (out && typeof out === 'object' && !(out instanceof tf.Tensor)) {
    for (const [k, v] of Object.entries(out)) {
      if (k === 'loss') continue;
      if (typeof v === 'number') extras[k] = v;
      else if (v instanceof tf.Tensor && v.size === 1) extras[k] = v.dataSync()[0]!;
    }
  }
  return extras;
}

/**
 * Automatic optimization of one batch, in Lightning's order:
 * `trainingStep` → [`onBeforeZeroGrad` → `optimizerZeroGrad`, on the first batch of an
 * accumulation window only, as Lightning's `zero_grad_fn`] → `onBeforeBackward` → backward →
 * `onAfterBackward`, all inside the closure that `optimizerStep` runs; then gradient sync
 * (DDP, once per optimizer step, so hooks see averaged gradients as in Lightning) →
 * `onBeforeOptimizerStep` → `configureGradientClipping` → the optimizer step.
 * Between optimizer steps (accumulating) only the closure runs.
 *
 * A module that overrides `trainingGradients` computes its gradients itself (async) in
 * place of `trainingStep` + backward, through a {@link GradientContext} that runs the same
 * zero-grad and backward hooks; everything after is the same.
 *
 * Returns the step outputs (empty when the step was skipped) and whether the optimizer stepped.
 */
export async function runAutomaticOptimization(
  trainer: Trainer,
  batch: unknown,
  batchIdx: number,
  firstInWindow: boolean,
  shouldStep: boolean,
): Promise<{ outputs: StepOutputs; stepped: boolean }> {
  const module = trainer.lightningModule;
  if (trainer.optimizers.length !== 1) {
    throw new MisconfigurationError(
      `Automatic optimization supports exactly one optimizer, \`configureOptimizers\` returned ${trainer.optimizers.length}. ` +
        'HINT: set `automaticOptimization = false` and step the optimizers in `trainingStep`.',
    );
  }
  const optimizer = trainer.optimizers[0]!;
  const accumulate = trainer.accumulateGradBatches;
  let outputs: StepOutputs = {};
  let skipped = false;

  // Lightning's zero_grad_fn: only on the first batch of an accumulation window.
  const beforeBackward = (loss: Tensor): void => {
    if (firstInWindow) {
      callTapeHooks(trainer, 'onBeforeZeroGrad', optimizer);
      callModuleHook(trainer, 'optimizerZeroGrad', trainer.currentEpoch, batchIdx, optimizer);
    }
    callTapeHooks(trainer, 'onBeforeBackward', loss);
  };

  const tapeClosure = async (): Promise<void> => {
    let extras: StepOutputs = {};
    const lossValue = tapeBackward(
      module,
      () => {
        const out = callModuleHook(trainer, 'trainingStep', batch, batchIdx);
        if (out instanceof Promise) {
          throw new MisconfigurationError('`trainingStep` must be synchronous with automatic optimization (it runs inside the gradient tape). Implement `trainingGradients` (async, computes its own gradients) or use `automaticOptimization = false`.');
        }
        const loss = lossOf(out);
        if (loss === null) return null;
        extras = numericExtras(out);
        return accumulate > 1 ? tf.div(loss, accumulate) : loss;
      },
      beforeBackward,
    );
    if (lossValue === null) {
      skipped = true;
      return;
    }
    callTapeHooks(trainer, 'onAfterBackward');
    // Report the un-divided loss, as Lightning does.
    outputs = { loss: lossValue.dataSync()[0]! * accumulate, ...extras };
    lossValue.dispose();
  };

  const gradientsClosure = async (): Promise<void> => {
    const ctx = new TrainerGradientContext(module, 1 / accumulate, beforeBackward);
    const previous = trainer.currentHookName;
    trainer.currentHookName = 'trainingStep'; // logs get trainingStep's defaults
    let out: TrainingStepOutput;
    try {
      out = await module.trainingGradients(batch, batchIdx, ctx);
    } finally {
      trainer.currentHookName = previous;
    }
    const loss = lossOf(out);
    if (loss === null) {
      if (ctx.announced) throw new MisconfigurationError('`trainingGradients` announced a loss (gradients were added) but returned none: return the loss, or skip the batch before `beforeBackward`/`backward`.');
      skipped = true;
      return;
    }
    if (!ctx.announced) throw new MisconfigurationError('`trainingGradients` returned a loss without adding any gradient: call `grad.backward(lossFn)`, or `grad.beforeBackward(loss)` then add the gradients.');
    callTapeHooks(trainer, 'onAfterBackward');
    outputs = { loss: loss.dataSync()[0]!, ...numericExtras(out) };
    tf.dispose(out as tf.TensorContainer);
  };
  const closure = module.computesOwnGradients ? gradientsClosure : tapeClosure;

  if (!shouldStep) {
    await closure();
    return { outputs, stepped: false };
  }
  const stepClosure = async (): Promise<void> => {
    await closure();
    if (skipped) return;
    const params = optimizer.paramGroups.flatMap((g) => g.params);
    await trainer.strategy.reduceGradients(params);
    await callCallbackHooks(trainer, 'onBeforeOptimizerStep', optimizer);
    callModuleHook(trainer, 'onBeforeOptimizerStep', optimizer);
    callModuleHook(trainer, 'configureGradientClipping', optimizer, trainer.gradientClipVal, trainer.gradientClipAlgorithm);
  };
  // A skipped batch must not step the optimizer: wrap it so `optimizer.step()` is a no-op then.
  const guarded = {
    get paramGroups() {
      return optimizer.paramGroups;
    },
    step: () => {
      if (!skipped) optimizer.step();
    },
    zeroGrad: () => optimizer.zeroGrad(),
    stateDict: () => optimizer.stateDict(),
    loadStateDict: (s: Parameters<typeof optimizer.loadStateDict>[0]) => optimizer.loadStateDict(s),
  };
  await module.optimizerStep(trainer.currentEpoch, batchIdx, guarded, stepClosure);
  return { outputs, stepped: !skipped };
}

/**
 * Manual optimization: the module's `trainingStep` (possibly async) calls
 * `manualBackward` and steps its optimizers itself. A step counts as an optimizer step
 * when any optimizer stepped (tracked by the Trainer through `ManualOptimizer.step`).
 */
export async function runManualOptimization(trainer: Trainer, batch: unknown, batchIdx: number): Promise<StepOutputs> {
  const out = await callModuleHook(trainer, 'trainingStep', batch, batchIdx);
  const outputs: StepOutputs = { ...numericExtras(out) };
  const loss = out instanceof tf.Tensor ? out : out && typeof out === 'object' && 'loss' in out ? out.loss : null;
  if (loss instanceof tf.Tensor) {
    outputs.loss = loss.dataSync()[0]!;
  }
  tf.dispose(out as tf.TensorContainer);
  return outputs;
}

/** `manualBackward`: runs the tape with the backward hooks. */
export function manualBackward(trainer: Trainer, module: LightningModule, lossFn: () => Tensor): Tensor {
  const value = tapeBackward(module, lossFn, (loss) => callTapeHooks(trainer, 'onBeforeBackward', loss));
  if (value === null) throw new MisconfigurationError('`manualBackward` needs a loss function that returns a tensor.');
  callTapeHooks(trainer, 'onAfterBackward');
  return value;
}

/** The {@link GradientContext} of one batch under automatic optimization. */
class TrainerGradientContext implements GradientContext {
  announced = false;

  constructor(
    private readonly module: LightningModule,
    readonly scale: number,
    private readonly announce: (loss: Tensor) => void,
  ) {}

  beforeBackward(loss: Tensor): void {
    if (this.announced) throw new MisconfigurationError('`grad.beforeBackward(loss)` was called twice for one batch: announce the batch loss once.');
    this.announced = true;
    // Hooks see the loss as it is differentiated: divided by accumulateGradBatches (Lightning's order).
    if (this.scale === 1) this.announce(loss);
    else {
      const scaled = tf.mul(loss, this.scale);
      this.announce(scaled);
      scaled.dispose();
    }
  }

  backward(lossFn: () => Tensor): Tensor {
    const announceHere = !this.announced;
    const value = tapeBackward(
      this.module,
      () => {
        const loss = lossFn();
        if (loss.rank !== 0) throw new MisconfigurationError(`\`grad.backward\` needs a scalar, got shape [${loss.shape.join(', ')}].`);
        return this.scale === 1 ? loss : tf.mul(loss, this.scale);
      },
      (loss) => {
        if (!announceHere) return;
        this.announced = true;
        this.announce(loss);
      },
    )!;
    if (this.scale === 1) return value;
    const unscaled = tf.div(value, this.scale);
    value.dispose();
    return unscaled;
  }

  accumulateGrad(param: Parameter, grad: Tensor): void {
    if (!this.announced) throw new MisconfigurationError('`grad.accumulateGrad` before the loss was announced: call `grad.beforeBackward(loss)` first (zero-grad runs there).');
    if (this.scale === 1) param.accumulateGrad(grad);
    else {
      param.accumulateGrad(tf.mul(grad, this.scale));
      grad.dispose();
    }
  }
}

/**
 * Lightning's manual-optimization checks: Trainer flags that act on the automatic path
 * (accumulation, gradient clipping) cannot act on a step the module drives itself, so
 * setting them is an error rather than silently ignored.
 * @throws MisconfigurationError naming the flag.
 */
export function verifyManualOptimizationSupport(trainer: Trainer): void {
  if (trainer.lightningModule.automaticOptimization) return;
  if (trainer.gradientClipVal !== null && trainer.gradientClipVal > 0) {
    throw new MisconfigurationError(
      `Automatic gradient clipping is not supported for manual optimization (\`gradientClipVal: ${trainer.gradientClipVal}\`, \`--gradient_clip_val\`). ` +
        'Remove it, or call `this.clipGradients(optimizer, value, algorithm)` in `trainingStep` yourself.',
    );
  }
  if (trainer.accumulateGradBatches !== 1) {
    throw new MisconfigurationError(
      `Automatic gradient accumulation is not supported for manual optimization (\`accumulateGradBatches: ${trainer.accumulateGradBatches}\`, \`--accumulate_grad_batches\`). ` +
        'Remove it, or accumulate in `trainingStep` and step the optimizer every N batches yourself.',
    );
  }
}
