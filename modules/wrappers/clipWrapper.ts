import { tf, type Tensor } from '../../core/tf.js';
import { MisconfigurationError } from '../../core/errors.js';
import { LightningModule } from '../../core/module.js';
import type { Module, Parameter } from '../../core/nn/module.js';
import * as F from '../../core/nn/functional.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { openClipOptim, type OpenClipOptimOptions } from '../../core/optim/openClipSchedule.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { tapeBackward } from '../../core/loops/optimization.js';
import type { OptimizerConfig } from '../../core/types.js';
import { retrievalAccuracy } from '../losses/clipLoss.js';
import { resolvePairLoss, SiglipPairLoss, type PairLoss, type PairLossName } from '../losses/pairLoss.js';
import type { SiglipCollectives, SiglipDistImpl } from '../losses/siglip.js';

/** What ClipWrapper needs of a two-tower model (the CLIP module, or any image/text pair). */
export interface ContrastiveTowers extends Module {
  /** Unnormalised image features `[B, D]` from NHWC images. */
  encodeImage(images: Tensor): Tensor;
  /** Unnormalised text features `[B, D]` from token ids `[B, L]`. */
  encodeText(tokens: Tensor): Tensor;
}

/** A batch of image–text pairs (the folder DataModule's batches). */
export interface ImageTextPairs {
  images: Tensor;
  texts: Tensor;
}

/** Hyperparameters of {@link ClipWrapper} (DESIGN §4 defaults). */
export interface ClipWrapperOptions {
  /** Chunk size of gradient caching; 0 (default) = the whole batch at once. */
  minibatchSize?: number;
  /** Peak learning rate (default 5e-4; 4e-4 is the ViT-L/14 recipe). */
  lr?: number;
  /** Linear warmup steps before the cosine decay (default 2000, as train-CLIP). */
  warmupSteps?: number;
  /** AdamW weight decay on ≥2-D weights (default 0.2). */
  weightDecay?: number;
  /** AdamW betas; default (0.9, 0.98) for ViTs, (0.9, 0.999) for ResNets. */
  betas?: [number, number];
  /** AdamW eps; default 1e-6 for ViTs, 1e-8 for ResNets. */
  eps?: number;
  /** Whether the image tower is a ResNet (picks the AdamW defaults above). */
  resnet?: boolean;
  /** Total optimizer steps of the schedule; default `trainer.estimatedSteppingBatches`. */
  totalSteps?: number;
  /** Extra hyperparameters to record (model name...). */
  hparams?: Record<string, unknown>;
  /** The loss: 'infonce' (default), 'siglip' (open_clip's `--siglip`), or a {@link PairLoss}. */
  loss?: PairLossName | PairLoss;
  /** How SigLIP moves text blocks under DDP (open_clip's `dist_impl`, default 'bidir'). */
  siglipDistImpl?: SiglipDistImpl;
  /** open_clip's `--lr_scheduler`, cooldown and `--grad_clip_norm`. */
  openClip?: OpenClipOptimOptions;
}

/**
 * train-CLIP's `CLIPWrapper`: contrastive training of a two-tower model with symmetric
 * InfoNCE over the global batch, AdamW + linear warmup + cosine, the logit scale clamped
 * to [0, ln 100] after each step (Radford et al. 2021, §2.5), and image→text /
 * text→image top-1 retrieval accuracy logged.
 *
 * Optimization is manual, for gradient caching (Gao et al. 2021, "Scaling Deep
 * Contrastive Learning Batch Size under Memory Limited Setup"): with `minibatchSize` m
 * < batch size, features of the whole batch are computed without gradients in chunks of m,
 * the loss and its gradient with respect to the features (and the logit scale) are taken
 * on the cached features, then each chunk is re-encoded with gradients and back-propagated
 * with its slice of the feature gradient. The result is exactly the big-batch gradient
 * (train-CLIP's version re-derives the loss per chunk and so counts the logit-scale
 * gradient 2n times; here it is counted once).
 *
 * Under DDP the features are all-gathered, every rank computes the global loss, and each
 * back-propagates its local slice scaled by the world size, so that the gradient
 * averaging of DDP yields the gradient of the global-batch loss (open_clip's
 * gather-with-grad semantics).
 */
export class ClipWrapper extends LightningModule<ImageTextPairs> {
  override automaticOptimization = false;
  readonly model: ContrastiveTowers;
  readonly minibatchSize: number;
  readonly pairLoss: PairLoss;
  private readonly openClip: OpenClipOptimOptions | undefined;
  protected readonly opts: Required<Omit<ClipWrapperOptions, 'betas' | 'eps' | 'totalSteps' | 'hparams' | 'loss' | 'siglipDistImpl' | 'openClip'>> & Pick<ClipWrapperOptions, 'betas' | 'eps' | 'totalSteps'>;

  constructor(model: ContrastiveTowers, options: ClipWrapperOptions = {}) {
    super();
    this.model = this.registerModule('model', model);
    this.minibatchSize = options.minibatchSize ?? 0;
    if (!Number.isInteger(this.minibatchSize) || this.minibatchSize < 0) {
      throw new MisconfigurationError(`\`--minibatch_size\` must be an integer ≥ 0 (0 = no gradient caching), got ${options.minibatchSize}.`);
    }
    this.opts = {
      minibatchSize: this.minibatchSize,
      lr: options.lr ?? 5e-4,
      warmupSteps: options.warmupSteps ?? 2000,
      weightDecay: options.weightDecay ?? 0.2,
      resnet: options.resnet ?? false,
      betas: options.betas,
      eps: options.eps,
      totalSteps: options.totalSteps,
    };
    if (!(this.opts.lr > 0)) throw new MisconfigurationError(`\`--lr\` must be a positive number, got ${options.lr}.`);
    if (!Number.isInteger(this.opts.warmupSteps) || this.opts.warmupSteps < 0) {
      throw new MisconfigurationError(`\`--warmup_steps\` must be an integer ≥ 0, got ${options.warmupSteps}.`);
    }
    if (!(this.opts.weightDecay >= 0)) throw new MisconfigurationError(`\`--weight_decay\` must be ≥ 0, got ${options.weightDecay}.`);
    this.openClip = options.openClip;
    this.pairLoss = resolvePairLoss(options.loss, { distImpl: options.siglipDistImpl });
    if (this.pairLoss.module) this.registerModule('loss', this.pairLoss.module);
    const scaleInit = this.pairLoss.logitScaleInit;
    if (scaleInit !== null) tf.tidy(() => this.logitScale.variable.assign(tf.fill(this.logitScale.shape, scaleInit)));
    this.saveHyperparameters({ ...options.hparams, loss: this.pairLoss.name, minibatch_size: this.minibatchSize, lr: this.opts.lr, warmup_steps: this.opts.warmupSteps, weight_decay: this.opts.weightDecay });
  }

  /** The model's `logit_scale` parameter (log of the inverse temperature). */
  get logitScale(): Parameter {
    const p = this.model.namedParameters().find(([n]) => n === 'logit_scale');
    if (!p) throw new MisconfigurationError('ClipWrapper needs a model with a `logit_scale` parameter.');
    return p[1];
  }

  override configureOptimizers(): OptimizerConfig {
    const resnet = this.opts.resnet;
    const groups = weightDecayParamGroups(this.namedParameters(), this.opts.weightDecay);
    const optimizer = new AdamW(groups, {
      lr: this.opts.lr,
      betas: this.opts.betas ?? (resnet ? [0.9, 0.999] : [0.9, 0.98]),
      eps: this.opts.eps ?? (resnet ? 1e-8 : 1e-6),
      weightDecay: this.opts.weightDecay,
    });
    // The schedule's length is the number of optimizer steps of the whole fit, from the
    // loader's batch count (already per rank), the epochs and accumulation. train-CLIP's
    // `num_training_steps` divided len(train_dataloader) — a batch count — by the batch size
    // again, so its cosine decay ended batch_size times too early.
    const total = this.opts.totalSteps ?? this.trainer?.estimatedSteppingBatches ?? 1;
    const warmup = Math.min(this.opts.warmupSteps, Math.max(0, total - 1));
    const scheduler = openClipOptim(optimizer, this.openClip, { warmup, total: Math.max(total, warmup + 1), maxEpochs: this.trainer?.maxEpochs }) ??
      new CosineWarmupScheduler(optimizer, { warmupSteps: warmup, totalSteps: Math.max(total, warmup + 1) });
    return { optimizer, lrScheduler: { scheduler, interval: 'step' } };
  }

  /** Normalised features of `x` in chunks of `size` without gradients (BatchNorm statistics untouched). */
  protected cachedFeatures(encode: (x: Tensor) => Tensor, x: Tensor, size: number): Tensor {
    const saved = this.model.namedBuffers().map(([, b]) => [b, tf.clone(b)] as const);
    const parts = chunks(x.shape[0]!, size).map(([start, len]) =>
      tf.tidy(() => F.normalize(encode(tf.slice(x, start, len)))),
    );
    // The cache pass must not update running statistics a second time (the gradient pass does).
    for (const [b, copy] of saved) {
      b.assign(copy);
      copy.dispose();
    }
    const out = tf.concat(parts);
    tf.dispose(parts);
    return out;
  }

  /** All-gathers features `[n, D]` into `[world·n, D]` (the input itself on one process). */
  protected async gather(t: Tensor): Promise<Tensor> {
    const world = this.trainer?.strategy.worldSize ?? 1;
    if (world === 1) return t;
    const g = await this.allGather(t);
    const flat = tf.reshape(g, [-1, t.shape[1]!]);
    g.dispose();
    return flat;
  }

  /**
   * Parameters the batch loss uses directly, not through the towers (their gradient is
   * taken at the feature level under gradient caching). Default: the logit scale.
   */
  protected headParameters(): Parameter[] {
    return this.pairLoss.heads(this.logitScale);
  }

  /**
   * The loss of the (global) batch from L2-normalised features `[N, D]` and the values of
   * {@link headParameters}, in the same order. Default: symmetric InfoNCE. Subclasses add
   * terms (self-distillation's KL).
   */
  protected featureLoss(imageFeatures: Tensor, textFeatures: Tensor, heads: Tensor[]): Tensor {
    return this.pairLoss.loss(imageFeatures, textFeatures, heads);
  }

  /** Runs backward with the Trainer's hooks when attached (and plainly in unit tests). */
  private backward(lossFn: () => Tensor): Tensor {
    return this.trainer ? this.manualBackward(lossFn) : tapeBackward(this, lossFn)!;
  }

  /**
   * Accumulates the gradient of the (global) batch loss into every parameter's `grad`,
   * with gradient caching when `minibatchSize` is below the batch size. Returns the loss
   * and the logits of the (global) batch; the caller disposes both.
   */
  async computeGradients(batch: ImageTextPairs): Promise<{ loss: Tensor; logits: Tensor }> {
    await this.beforeGradients(batch);
    try {
      return await this.featureGradients(batch);
    } finally {
      this.afterGradients();
    }
  }

  /** Called before each batch's gradients (self-distillation computes its teacher targets here). */
  protected async beforeGradients(_batch: ImageTextPairs): Promise<void> {}
  /** Called after each batch's gradients (releases what `beforeGradients` made). */
  protected afterGradients(): void {}
  /** Called after each optimizer step (self-distillation updates its EMA teacher here). */
  protected afterOptimizerStep(): void {}

  private async featureGradients(batch: ImageTextPairs): Promise<{ loss: Tensor; logits: Tensor }> {
    const { images, texts } = batch;
    const n = images.shape[0]!;
    const strategy = this.trainer?.strategy;
    const world = strategy?.worldSize ?? 1;
    const heads = this.headParameters();
    if ((this.minibatchSize === 0 || this.minibatchSize >= n) && world === 1) {
      let kept: Tensor | null = null;
      const loss = this.backward(() => {
        const zi = F.normalize(this.model.encodeImage(images));
        const zt = F.normalize(this.model.encodeText(texts));
        kept = tf.keep(this.pairLoss.logits(zi, zt, heads.map((p) => p.variable)));
        return this.featureLoss(zi, zt, heads.map((p) => p.variable));
      });
      return { loss, logits: kept! };
    }
    const m = this.minibatchSize === 0 ? n : this.minibatchSize;
    const zi = this.cachedFeatures((x) => this.model.encodeImage(x), images, m);
    const zt = this.cachedFeatures((x) => this.model.encodeText(x), texts, m);
    const comm = (strategy as { processGroup?: SiglipCollectives } | undefined)?.processGroup;
    const sig = world > 1 && comm && this.pairLoss instanceof SiglipPairLoss && this.featureLoss === ClipWrapper.prototype.featureLoss ? this.pairLoss : null;
    if (sig) {
      // SigLIP under DDP: open_clip's communication (dist_impl); gradients are already this
      // rank's share, so no ×world here.
      const r = await sig.distributed(zi, zt, heads.map((p) => p.variable), comm!);
      const logits = this.pairLoss.logits(zi, zt, heads.map((p) => p.variable));
      for (const [start, len] of chunks(n, m)) {
        this.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeImage(tf.slice(images, start, len))), tf.slice(r.gradImage, start, len)))).dispose();
        this.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeText(tf.slice(texts, start, len))), tf.slice(r.gradText, start, len)))).dispose();
      }
      [r.gradScale, r.gradBias].forEach((g, i) => (heads[i]!.requiresGrad ? heads[i]!.accumulateGrad(g) : g.dispose()));
      tf.dispose([zi, zt, r.gradImage, r.gradText]);
      return { loss: r.loss, logits };
    }
    const allI = await this.gather(zi);
    const allT = await this.gather(zt);
    const { value, grads } = tf.valueAndGrads((...xs: Tensor[]) => this.featureLoss(xs[0]!, xs[1]!, xs.slice(2)))([allI, allT, ...heads.map((p) => p.variable)]);
    const logits = this.pairLoss.logits(allI, allT, heads.map((p) => p.variable));
    const [gI, gT, ...gHeads] = grads as Tensor[];
    // This rank's rows; ×world so DDP's averaging gives the global-batch gradient.
    const offset = (strategy?.globalRank ?? 0) * n;
    const localI = tf.tidy(() => tf.mul(tf.slice(gI!, offset, n), world));
    const localT = tf.tidy(() => tf.mul(tf.slice(gT!, offset, n), world));
    for (const [start, len] of chunks(n, m)) {
      this.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeImage(tf.slice(images, start, len))), tf.slice(localI, start, len)))).dispose();
      this.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeText(tf.slice(texts, start, len))), tf.slice(localT, start, len)))).dispose();
    }
    heads.forEach((p, i) => (p.requiresGrad ? p.accumulateGrad(gHeads[i]!) : gHeads[i]!.dispose()));
    tf.dispose([zi, zt, gI!, gT!, localI, localT]);
    if (allI !== zi) tf.dispose([allI, allT]);
    return { loss: value, logits };
  }

  override async trainingStep(batch: ImageTextPairs): Promise<Tensor> {
    const n = batch.images.shape[0]!;
    const world = this.trainer!.strategy.worldSize;
    const [opt] = this.optimizers();
    opt!.zeroGrad();
    const { loss, logits } = await this.computeGradients(batch);
    await opt!.step();
    for (const sched of this.lrSchedulers()) sched.step();
    this.clampLogitScale();
    this.afterOptimizerStep();
    const acc = retrievalAccuracy(logits);
    logits.dispose();
    const bs = n * world;
    this.log('train_loss', loss, { progBar: true, batchSize: bs });
    this.log('train_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: bs });
    this.log('logit_scale', Math.exp(this.logitScale.variable.dataSync()[0]!));
    return loss;
  }

  /** Clamps the logit scale to [0, ln 100] after each step, as in the CLIP paper (§2.5). */
  clampLogitScale(): void {
    const v = this.logitScale.variable;
    tf.tidy(() => v.assign(tf.clipByValue(v, 0, Math.log(100))));
  }

  override validationStep(batch: ImageTextPairs): void {
    const zi = F.normalize(this.model.encodeImage(batch.images));
    const zt = F.normalize(this.model.encodeText(batch.texts));
    const heads = this.headParameters().map((p) => p.variable);
    const logits = this.pairLoss.logits(zi, zt, heads);
    const n = batch.images.shape[0]!;
    const acc = retrievalAccuracy(logits);
    this.log('val_loss', this.featureLoss(zi, zt, heads), { progBar: true, batchSize: n });
    this.log('val_acc_i2t', acc.imageToText, { batchSize: n });
    this.log('val_acc_t2i', acc.textToImage, { batchSize: n });
    this.log('val_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: n });
  }
}

/** [start, length] of consecutive chunks of at most `size` covering 0..n-1. */
export function chunks(n: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(size, n - s)]);
  return out;
}
