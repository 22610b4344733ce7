import { tf, type Tensor } from '../../core/tf.js';
import { MisconfigurationError } from '../../core/errors.js';
import { Module, type Parameter } from '../../core/nn/module.js';
import { Linear } from '../../core/nn/linear.js';
import * as F from '../../core/nn/functional.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import type { OptimizerConfig } from '../../core/types.js';
import { distillationLoss, distillationTargets, type DistillationTargets } from '../losses/distillation.js';
import { clipLossCore } from '../losses/clipLoss.js';
import { ClipWrapper, chunks, type ClipWrapperOptions, type ContrastiveTowers, type ImageTextPairs } from './clipWrapper.js';

/** Any image encoder: NHWC images → features `[B, F]` (a ResNet-50 with its fc removed, a ViT...). */
export interface ImageEncoder extends Module {
  forward(images: Tensor): Tensor;
}

/** A Hugging Face-style text encoder: token ids and attention mask → hidden states `[B, L, H]`. */
export interface TextEncoder extends Module {
  forward(inputIds: Tensor, attentionMask: Tensor): { lastHiddenState: Tensor };
}

/** Options of {@link DualEncoder}. */
export interface DualEncoderOptions {
  /** Feature size of the image encoder's output. */
  imageDim: number;
  /** Hidden size of the text encoder. */
  textDim: number;
  /** Shared embedding size (default: `textDim`). */
  embedDim?: number;
  /** Mean-pool the text over the attention mask instead of taking the first (CLS) token. */
  avgWordEmbs?: boolean;
  /** Padding id of the tokenizer: the attention mask is `ids != padTokenId` (BERT 0, RoBERTa 1). */
  padTokenId?: number;
}

/**
 * Two pretrained towers with new projection heads to a shared space (train-CLIP's
 * `CustomCLIPWrapper` model): `visual` (image encoder), `transformer` (text encoder),
 * `image_projection`, `text_projection`, and `logit_scale`.
 */
export class DualEncoder extends Module implements ContrastiveTowers {
  readonly visual: ImageEncoder;
  readonly transformer: TextEncoder;
  readonly imageProjection: Linear;
  readonly textProjection: Linear;
  readonly avgWordEmbs: boolean;
  readonly padTokenId: number;

  constructor(imageEncoder: ImageEncoder, textEncoder: TextEncoder, options: DualEncoderOptions) {
    super();
    const embed = options.embedDim ?? options.textDim;
    this.visual = this.registerModule('visual', imageEncoder);
    this.transformer = this.registerModule('transformer', textEncoder);
    this.imageProjection = this.registerModule('image_projection', new Linear(options.imageDim, embed, { bias: false }));
    this.textProjection = this.registerModule('text_projection', new Linear(options.textDim, embed, { bias: false }));
    this.registerParameter('logit_scale', tf.scalar(Math.log(1 / 0.07)));
    this.avgWordEmbs = options.avgWordEmbs ?? false;
    this.padTokenId = options.padTokenId ?? 0;
  }

  encodeImage(images: Tensor): Tensor {
    return this.imageProjection.forward(this.visual.forward(images));
  }

  encodeText(tokens: Tensor): Tensor {
    return tf.tidy(() => {
      const mask = tf.cast(tf.notEqual(tokens, this.padTokenId), 'int32');
      const h = this.transformer.forward(tokens, mask).lastHiddenState;
      let pooled: Tensor;
      if (this.avgWordEmbs) {
        const m = tf.expandDims(tf.cast(mask, 'float32'), 2);
        pooled = tf.div(tf.sum(tf.mul(h, m), 1), tf.maximum(tf.sum(m, 1), 1));
      } else {
        pooled = tf.squeeze(tf.slice(h, [0, 0, 0], [-1, 1, -1]), [1]);
      }
      return this.textProjection.forward(pooled);
    });
  }
}

/** Options of {@link CustomClipWrapper}. */
export interface CustomClipWrapperOptions extends ClipWrapperOptions, DualEncoderOptions {
  /** Learning rate of the pretrained towers (default: `lr`); the heads use `lr`. */
  encoderLr?: number;
  /** Freeze the image tower (LiT's locked image tuning). */
  lockImage?: boolean;
  /** Freeze the text tower. */
  lockText?: boolean;
  /** Add the self-distillation term; needs `teacher`. */
  selfDistillation?: boolean;
  /** Weight of the KL term (default 1). */
  klCoeff?: number;
  /** EMA decay of the teacher (default 0.999). */
  teacherDecay?: number;
  /** A second, identically shaped pair of encoders for the teacher (its weights are copied from the student). */
  teacher?: { imageEncoder: ImageEncoder; textEncoder: TextEncoder };
}

/**
 * train-CLIP's `CustomCLIPWrapper`: contrastive fine-tuning of any image encoder with a
 * Hugging Face text encoder, with the same InfoNCE and gradient caching as ClipWrapper,
 * separate learning rates for towers and heads, optional locked towers, and optional
 * self-distillation (DESIGN §4): an EMA teacher (t ← d·t + (1 − d)·s after every optimizer
 * step) gives Sinkhorn soft targets, and `klCoeff · KL` with a learnable temperature is
 * added to the loss. The teacher is a frozen submodule, so it is saved in and restored
 * from checkpoints with the weights.
 */
export class CustomClipWrapper extends ClipWrapper {
  readonly dual: DualEncoder;
  readonly teacher: DualEncoder | null = null;
  readonly klCoeff: number;
  readonly teacherDecay: number;
  private readonly encoderLr: number;
  private readonly lockImage: boolean;
  private readonly lockText: boolean;
  private readonly sinkTemp: Parameter | null = null;
  private targets: DistillationTargets | null = null;

  constructor(imageEncoder: ImageEncoder, textEncoder: TextEncoder, options: CustomClipWrapperOptions) {
    const dual = new DualEncoder(imageEncoder, textEncoder, options);
    super(dual, { ...options, hparams: { ...options.hparams, self_distillation: options.selfDistillation ?? false, kl_coeff: options.klCoeff ?? 1 } });
    this.dual = dual;
    this.encoderLr = options.encoderLr ?? this.opts.lr;
    this.klCoeff = options.klCoeff ?? 1;
    this.teacherDecay = options.teacherDecay ?? 0.999;
    this.lockImage = options.lockImage ?? false;
    this.lockText = options.lockText ?? false;
    if (this.lockImage) imageEncoder.requiresGrad(false);
    if (this.lockText) textEncoder.requiresGrad(false);
    if (options.selfDistillation) {
      if (!options.teacher) throw new MisconfigurationError('`--self_distillation` needs a teacher: pass `teacher: { imageEncoder, textEncoder }` built like the student.');
      if (!(this.teacherDecay >= 0 && this.teacherDecay < 1)) throw new MisconfigurationError(`\`teacherDecay\` must be in [0, 1), got ${this.teacherDecay}.`);
      const teacher = new DualEncoder(options.teacher.imageEncoder, options.teacher.textEncoder, options);
      teacher.loadStateDict(dual.stateDict());
      teacher.requiresGrad(false).eval();
      this.teacher = this.registerModule('teacher', teacher);
      this.sinkTemp = this.registerParameter('sink_temp', tf.scalar(Math.log(1 / 0.07)));
    }
  }

  override configureOptimizers(): OptimizerConfig {
    const named = this.namedParameters().filter(([n]) => !n.startsWith('teacher.'));
    const isTower = (n: string): boolean => n.startsWith('model.visual.') || n.startsWith('model.transformer.');
    const wd = this.opts.weightDecay;
    const towers = weightDecayParamGroups(named.filter(([n]) => isTower(n)), wd, { lr: this.encoderLr });
    const heads = weightDecayParamGroups(named.filter(([n]) => !isTower(n)), wd, { lr: this.opts.lr });
    const groups = [...towers, ...heads].filter((g) => g.params.length > 0);
    const optimizer = new AdamW(groups, { lr: this.opts.lr, betas: this.opts.betas ?? [0.9, 0.98], eps: this.opts.eps ?? 1e-6, weightDecay: wd });
    const total = this.opts.totalSteps ?? this.trainer?.estimatedSteppingBatches ?? 1;
    const warmup = Math.min(this.opts.warmupSteps, Math.max(0, total - 1));
    return { optimizer, lrScheduler: { scheduler: new CosineWarmupScheduler(optimizer, { warmupSteps: warmup, totalSteps: Math.max(total, warmup + 1) }), interval: 'step' } };
  }

  /**
   * `train()` as usual, except that the EMA teacher and locked towers stay in eval mode: no
   * dropout in the teacher's targets, no BatchNorm running-statistics updates (and
   * running statistics used) in a tower that is not trained.
   */
  override train(mode = true): this {
    super.train(mode);
    this.teacher?.eval();
    if (this.lockImage) this.dual.visual.eval();
    if (this.lockText) this.dual.transformer.eval();
    return this;
  }

  protected override headParameters(): Parameter[] {
    return this.sinkTemp ? [this.logitScale, this.sinkTemp] : [this.logitScale];
  }

  protected override featureLoss(zi: Tensor, zt: Tensor, heads: Tensor[]): Tensor {
    const contrastive = clipLossCore(zi, zt, tf.exp(heads[0]!));
    if (!this.targets || !heads[1]) return contrastive;
    return tf.add(contrastive, tf.mul(distillationLoss(zi, zt, heads[1], this.targets), this.klCoeff));
  }

  protected override async beforeGradients(batch: ImageTextPairs): Promise<void> {
    if (!this.teacher) return;
    const t = this.teacher;
    const m = this.minibatchSize || batch.images.shape[0]!;
    const encode = (f: (x: Tensor) => Tensor, x: Tensor): Tensor => {
      const parts = chunks(x.shape[0]!, m).map(([s, n]) => tf.tidy(() => F.normalize(f(tf.slice(x, s, n)))));
      const out = tf.concat(parts);
      tf.dispose(parts);
      return out;
    };
    const ti = encode((x) => t.encodeImage(x), batch.images);
    const tt = encode((x) => t.encodeText(x), batch.texts);
    const gi = await this.gather(ti);
    const gt = await this.gather(tt);
    this.targets = distillationTargets(gi, gt);
    tf.dispose([ti, tt]);
    if (gi !== ti) tf.dispose([gi, gt]);
  }

  protected override afterGradients(): void {
    if (this.targets) tf.dispose([this.targets.image, this.targets.text]);
    this.targets = null;
  }

  /** t ← d·t + (1 − d)·s over every parameter and floating buffer of the towers and heads. */
  protected override afterOptimizerStep(): void {
    if (!this.teacher) return;
    const d = this.teacherDecay;
    const student = this.dual.stateDict();
    const teacher = this.teacher.stateDict();
    tf.tidy(() => {
      for (const [name, tv] of Object.entries(teacher)) {
        const sv = student[name]!;
        if (tv.dtype !== 'float32') (tv as tf.Variable).assign(sv);
        else (tv as tf.Variable).assign(tf.add(tf.mul(tv, d), tf.mul(sv, 1 - d)));
      }
    });
  }

  /** Applies one teacher update now (exposed for tests of the EMA). */
  updateTeacher(): void {
    this.afterOptimizerStep();
  }
}
