import { tf, type Tensor, type Variable } from '../core/tf.js';
import { Callback, type TensorState } from '../core/callback.js';
import { MisconfigurationError } from '../core/errors.js';
import type { LightningModule } from '../core/module.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';

/** Options of {@link EMA}. */
export interface EMAOptions {
  /** ema ← decay·ema + (1 − decay)·weights after every optimizer step (default 0.999). */
  decay?: number;
  /** Validate (and test) with the EMA weights, then swap the trained weights back (default true). */
  useForValidation?: boolean;
  /** Copy the EMA weights into the model when training ends (default false). */
  applyAtEnd?: boolean;
  /** Start averaging after this many optimizer steps (before it, EMA = weights). */
  startStep?: number;
}

/**
 * Exponential moving average of the weights (as timm's ModelEmaV2, and the EMA teacher of
 * self-distillation): updated after each optimizer step; floating-point buffers (BatchNorm
 * statistics) are averaged too, others copied. Saved in and restored from checkpoints.
 */
export class EMA extends Callback {
  readonly decay: number;
  readonly useForValidation: boolean;
  readonly applyAtEnd: boolean;
  readonly startStep: number;
  private shadow = new Map<string, Variable>();
  private backup: Map<string, Tensor> | null = null;
  private lastStep = -1;
  private pending: TensorState | null = null;

  constructor(options: EMAOptions = {}) {
    super();
    this.decay = options.decay ?? 0.999;
    if (!(this.decay >= 0 && this.decay <= 1)) throw new MisconfigurationError(`\`EMA(decay=${options.decay})\` must be in [0, 1].`);
    this.useForValidation = options.useForValidation ?? true;
    this.applyAtEnd = options.applyAtEnd ?? false;
    this.startStep = options.startStep ?? 0;
  }

  /** The averaged tensors by state-dict name (live: do not dispose). */
  get weights(): ReadonlyMap<string, Tensor> {
    return this.shadow;
  }

  override onFitStart(_trainer: Trainer, module: LightningModule): void {
    if (this.shadow.size === 0) this.init(module);
    if (this.pending) {
      for (const [k, v] of Object.entries(this.pending)) this.shadow.get(k)?.assign(v);
      tf.dispose(Object.values(this.pending));
      this.pending = null;
    }
  }

  private init(module: LightningModule): void {
    for (const [name, t] of Object.entries(module.stateDict())) {
      this.shadow.set(name, tf.variable(t.dtype === 'float32' ? tf.clone(t) : tf.cast(t, 'float32'), false));
    }
  }

  override onTrainBatchEnd(trainer: Trainer, module: LightningModule): void {
    if (trainer.globalStep === this.lastStep) return; // no optimizer step this batch (accumulating)
    this.lastStep = trainer.globalStep;
    const d = trainer.globalStep <= this.startStep ? 0 : this.decay;
    const sd = module.stateDict();
    tf.tidy(() => {
      for (const [name, s] of this.shadow) {
        const w = sd[name]!;
        const wf = w.dtype === 'float32' ? w : tf.cast(w, 'float32');
        // s ← d·s + (1 − d)·w, written as s + (1 − d)(w − s) to keep precision.
        s.assign(d === 0 ? wf : tf.add(s, tf.mul(tf.sub(wf, s), 1 - d)));
      }
    });
  }

  private swapIn(module: LightningModule): void {
    if (!this.useForValidation || this.shadow.size === 0 || this.backup) return;
    const sd = module.stateDict();
    this.backup = new Map(Object.entries(sd).map(([k, v]) => [k, tf.clone(v)]));
    module.loadStateDict(Object.fromEntries(this.shadow));
  }

  private swapOut(module: LightningModule): void {
    if (!this.backup) return;
    module.loadStateDict(Object.fromEntries(this.backup));
    tf.dispose([...this.backup.values()]);
    this.backup = null;
  }

  override onValidationStart(trainer: Trainer, module: LightningModule): void {
    if (!trainer.sanityChecking) this.swapIn(module);
  }
  override onValidationEnd(_trainer: Trainer, module: LightningModule): void {
    this.swapOut(module);
  }
  override onTestStart(_trainer: Trainer, module: LightningModule): void {
    this.swapIn(module);
  }
  override onTestEnd(_trainer: Trainer, module: LightningModule): void {
    this.swapOut(module);
  }
  override onException(_trainer: Trainer, module: LightningModule): void {
    this.swapOut(module);
  }

  override onTrainEnd(_trainer: Trainer, module: LightningModule): void {
    if (this.applyAtEnd && this.shadow.size) module.loadStateDict(Object.fromEntries(this.shadow));
  }

  override stateDict(): Record<string, unknown> {
    return { decay: this.decay, lastStep: this.lastStep };
  }
  override loadStateDict(s: Record<string, unknown>): void {
    this.lastStep = Number(s.lastStep ?? -1);
  }
  override tensorStateDict(): TensorState {
    return Object.fromEntries(this.shadow);
  }
  override loadTensorStateDict(state: TensorState): void {
    // Checkpoints are restored before onFitStart creates the shadow: keep copies until then.
    if (this.shadow.size) {
      for (const [k, v] of Object.entries(state)) this.shadow.get(k)?.assign(v);
    } else {
      this.pending = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, tf.clone(v)]));
    }
  }

  /** Releases the averaged weights. */
  dispose(): void {
    for (const v of this.shadow.values()) v.dispose();
    this.shadow.clear();
  }
}

register('callback', 'ema', (o) => new EMA(o as EMAOptions), { description: 'exponential moving average of the weights' });
