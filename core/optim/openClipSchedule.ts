/**
 * open_clip's learning-rate schedules (`--lr_scheduler cosine | const | const-cooldown`,
 * src/training/scheduler.py) and its `--grad_clip_norm`, for wrappers that build their own
 * optimizer. Warmup follows open_clip: lr = base·(s+1)/warmup for s < warmup (lightclip's
 * CosineWarmupScheduler uses s/warmup, as train-CLIP); then
 *  - cosine: base·(1 + cos(π·(s − warmup)/(total − warmup)))/2;
 *  - const: base;
 *  - const-cooldown: base until total − cooldown, then
 *    end + (base − end)·(1 − e/cooldown)^power over the last `cooldownSteps` steps.
 */
import { MisconfigurationError, showValue } from '../errors.js';
import { clipGradNorm } from './clip.js';
import { LRScheduler } from './lrScheduler.js';
import type { Optimizer } from './optimizer.js';

export type OpenClipScheduleKind = 'cosine' | 'const' | 'const-cooldown';

export interface OpenClipScheduleOptions {
  kind: OpenClipScheduleKind;
  warmupSteps: number;
  totalSteps: number;
  /** Steps of the final cooldown (const-cooldown; open_clip: `--epochs-cooldown` × steps per epoch). */
  cooldownSteps?: number;
  /** Learning rate at the end of the cooldown (`--lr_cooldown_end`, default 0). */
  cooldownEnd?: number;
  /** Exponent of the cooldown (`--lr_cooldown_power`, default 1: linear). */
  cooldownPower?: number;
}

export class OpenClipScheduler extends LRScheduler {
  private readonly o: Required<OpenClipScheduleOptions>;

  constructor(optimizer: Optimizer, options: OpenClipScheduleOptions) {
    super(optimizer);
    const kinds: OpenClipScheduleKind[] = ['cosine', 'const', 'const-cooldown'];
    if (!kinds.includes(options.kind)) throw new MisconfigurationError(`\`--lr_scheduler\` must be one of ${kinds.join(', ')}, got ${showValue(options.kind)}.`);
    const cooldownSteps = options.cooldownSteps ?? 0;
    if (options.kind === 'const-cooldown' && !(Number.isInteger(cooldownSteps) && cooldownSteps > 0 && cooldownSteps <= options.totalSteps)) {
      throw new MisconfigurationError(`\`--lr_scheduler const-cooldown\` needs a cooldown of 1..${options.totalSteps} steps (\`--epochs_cooldown\`), got ${showValue(cooldownSteps)} steps.`);
    }
    this.o = { cooldownEnd: 0, cooldownPower: 1, ...options, cooldownSteps };
    this.initialStep();
  }

  protected override computeLr(step: number, base: number): number {
    const { kind, warmupSteps: w, totalSteps: total, cooldownSteps, cooldownEnd, cooldownPower } = this.o;
    if (step < w) return (base * (step + 1)) / w;
    if (kind === 'const') return base;
    if (kind === 'cosine') {
      const e = step - w;
      const es = Math.max(1, total - w);
      return e >= es ? 0 : 0.5 * (1 + Math.cos((Math.PI * e) / es)) * base;
    }
    const start = total - cooldownSteps;
    if (step < start) return base;
    const frac = Math.min(1, (step - start) / cooldownSteps);
    return (1 - frac) ** cooldownPower * (base - cooldownEnd) + cooldownEnd;
  }
}

/**
 * Makes `optimizer.step()` first rescale the gradients to a global 2-norm of at most
 * `maxNorm` (open_clip's `--grad_clip_norm`). Wrapping `step` puts the clipping after
 * DDP's gradient averaging, which runs before the step in both optimization modes.
 */
export function withGradClipNorm<O extends Optimizer>(optimizer: O, maxNorm: number): O {
  if (!(maxNorm > 0)) throw new MisconfigurationError(`\`--grad_clip_norm\` must be > 0, got ${showValue(maxNorm)}.`);
  const step = optimizer.step.bind(optimizer);
  optimizer.step = () => {
    clipGradNorm(optimizer.paramGroups.flatMap((g) => g.params), maxNorm);
    step();
  };
  return optimizer;
}

/** open_clip's schedule and clipping flags, as a wrapper option. */
export interface OpenClipOptimOptions {
  lrScheduler?: OpenClipScheduleKind;
  /** Epochs of the const-cooldown tail (`--epochs_cooldown`). */
  epochsCooldown?: number;
  lrCooldownEnd?: number;
  lrCooldownPower?: number;
  gradClipNorm?: number;
}

/**
 * Applies `--grad_clip_norm` to `optimizer` and returns the open_clip scheduler named by
 * `--lr_scheduler`, or null when none was asked for (the wrapper keeps its own schedule).
 */
export function openClipOptim(optimizer: Optimizer, o: OpenClipOptimOptions | undefined, steps: { warmup: number; total: number; maxEpochs?: number }): LRScheduler | null {
  if (!o) return null;
  if (o.gradClipNorm !== undefined && o.gradClipNorm > 0) withGradClipNorm(optimizer, o.gradClipNorm);
  if (!o.lrScheduler) return null;
  let cooldownSteps = 0;
  if (o.lrScheduler === 'const-cooldown') {
    const epochs = steps.maxEpochs;
    if (!(o.epochsCooldown && o.epochsCooldown > 0)) throw new MisconfigurationError('`--lr_scheduler const-cooldown` needs `--epochs_cooldown N` (> 0).');
    if (!(epochs && epochs > 0)) throw new MisconfigurationError('`--epochs_cooldown` needs `--max_epochs` (the cooldown is counted in epochs, as open_clip).');
    cooldownSteps = Math.round((steps.total * o.epochsCooldown) / epochs);
  }
  return new OpenClipScheduler(optimizer, { kind: o.lrScheduler, warmupSteps: steps.warmup, totalSteps: steps.total, cooldownSteps, cooldownEnd: o.lrCooldownEnd, cooldownPower: o.lrCooldownPower });
}
