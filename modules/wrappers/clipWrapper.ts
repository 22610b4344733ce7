import { tf, type Tensor } from '../../core/tf.js';
import { MisconfigurationError } from '../../core/errors.js';
import { LightningModule } from '../../core/module.js';
import type { Module, Parameter } from '../../core/nn/module.js';
import * as F from '../../core/nn/functional.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { openClipOptim, type OpenClipOptimOptions } from '../../core/optim/openClipSchedule.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { RecordedForward, backward } from '../../core/autograd.js';
import { defaultGenerator } from '../../core/random.js';
import type { GradientContext } from '../../core/module.js';
import type { OptimizerConfig, OptimizerLike } from '../../core/types.js';
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
 * to [0, ln 100] after each optimizer step (Radford et al. 2021, §2.5), and image→text /
 * text→image top-1 retrieval accuracy logged.
 *
 * Optimization is the Trainer's (automatic): ClipWrapper only computes the batch's
 * gradients, in {@link trainingGradients}; zero-grad, accumulation (`accumulateGradBatches`),
 * DDP gradient averaging, clipping (`gradientClipVal`), the optimizer step, the LR scheduler
 * and every hook are the Trainer's, in Lightning's order. The clamp (and self-distillation's
 * EMA teacher update) run in {@link optimizerStep}, i.e. once per optimizer step.
 *
 * Three ways to the same gradient, all of the global-batch loss:
 * - one process, no gradient caching: one tape over forward and loss;
 * - DDP, no gradient caching: one forward on a recorded tape ({@link RecordedForward}), the
 *   features all-gathered, the loss of the global batch and its gradient with respect to
 *   the features taken on the gathered features, and this rank's slice back-propagated
 *   through the recorded forward — one forward per sample, as open_clip's gather with
 *   local features;
 * - gradient caching (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size
 *   under Memory Limited Setup"), `minibatchSize` m < batch size: features of the batch in
 *   chunks of m without gradients, the loss and its feature gradient on the cached (and
 *   gathered) features, then each chunk re-encoded with gradients and back-propagated with
 *   its slice of the feature gradient. The generator state before each chunk's cache pass
 *   is restored before its gradient pass (GradCache's `RandContext`), so dropout draws the
 *   same masks twice and the gradient is exactly that of the batch loss. BatchNorm
 *   normalises each chunk by the chunk's own statistics (as in GradCache and train-CLIP),
 *   so a BatchNorm tower's loss is that of m-sample BatchNorm batches, not of the full
 *   batch; running statistics are updated once per chunk, by the gradient pass only.
 *   (train-CLIP re-derives the loss per chunk and counts the logit-scale gradient 2n
 *   times; here it is counted once.)
 *
 * Under DDP every rank computes the global loss and back-propagates its local slice ×
 * world size, so that DDP's gradient averaging yields the gradient of the global-batch loss.
 */
export class ClipWrapper extends LightningModule<ImageTextPairs> {
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

  /**
   * Normalised features of `x` in chunks of `size` without gradients. Pushes the generator
   * state before each chunk onto `states` (the gradient pass replays it), and leaves
   * BatchNorm running statistics as they were (the gradient pass updates them).
   */
  protected cachedFeatures(encode: (x: Tensor) => Tensor, x: Tensor, size: number, states: number[][]): Tensor {
    const saved = this.model.namedBuffers().map(([, b]) => [b, tf.clone(b)] as const);
    const parts = chunks(x.shape[0]!, size).map(([start, len]) => {
      states.push(defaultGenerator.getState());
      return tf.tidy(() => F.normalize(encode(tf.slice(x, start, len))));
    });
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

  /**
   * Accumulates the gradient of the (global) batch loss into every parameter's `grad`,
   * with gradient caching when `minibatchSize` is below the batch size. Returns the loss
   * and the logits of the (global) batch; the caller disposes both. Without `grad` (tests,
   * benchmarks: no Trainer) gradients are added unscaled and no hook runs.
   */
  async computeGradients(batch: ImageTextPairs, grad: GradientContext = new PlainGradients(this)): Promise<{ loss: Tensor; logits: Tensor }> {
    await this.beforeGradients(batch);
    try {
      return await this.featureGradients(batch, grad);
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

  private async featureGradients(batch: ImageTextPairs, grad: GradientContext): Promise<{ loss: Tensor; logits: Tensor }> {
    const { images, texts } = batch;
    const n = images.shape[0]!;
    const world = this.trainer?.strategy.worldSize ?? 1;
    const caching = this.minibatchSize > 0 && this.minibatchSize < n;
    if (!caching && world === 1) {
      let kept: Tensor | null = null;
      const loss = grad.backward(() => {
        const zi = F.normalize(this.model.encodeImage(images));
        const zt = F.normalize(this.model.encodeText(texts));
        const heads = this.headParameters().map((p) => p.variable);
        kept = tf.keep(this.pairLoss.logits(zi, zt, heads));
        return this.featureLoss(zi, zt, heads);
      });
      return { loss, logits: kept! };
    }
    if (!caching) return this.gatheredGradients(batch, grad);
    return this.cachedGradients(batch, grad);
  }

  /**
   * The loss of the gathered features and its gradients: with respect to this rank's rows
   * of the image and text features (×world, see the class comment) and to the head
   * parameters. Announces the loss (zero-grad and `onBeforeBackward` run there).
   */
  private async globalLoss(zi: Tensor, zt: Tensor, grad: GradientContext): Promise<{ loss: Tensor; logits: Tensor; gi: Tensor; gt: Tensor; gHeads: Tensor[] }> {
    const strategy = this.trainer?.strategy;
    const world = strategy?.worldSize ?? 1;
    const n = zi.shape[0]!;
    const heads = this.headParameters();
    const comm = (strategy as { processGroup?: SiglipCollectives } | undefined)?.processGroup;
    const sig = world > 1 && comm && this.pairLoss instanceof SiglipPairLoss && this.featureLoss === ClipWrapper.prototype.featureLoss ? this.pairLoss : null;
    if (sig) {
      // SigLIP under DDP: open_clip's communication (dist_impl); its gradients are already
      // this rank's share of the global loss's, so no ×world here.
      const vars = heads.map((p) => p.variable);
      const r = await sig.distributed(zi, zt, vars, comm!);
      const logits = this.pairLoss.logits(zi, zt, vars);
      grad.beforeBackward(r.loss);
      return { loss: r.loss, logits, gi: r.gradImage, gt: r.gradText, gHeads: [r.gradScale, r.gradBias] };
    }
    const allI = await this.gather(zi);
    const allT = await this.gather(zt);
    const { value, grads } = tf.valueAndGrads((...xs: Tensor[]) => this.featureLoss(xs[0]!, xs[1]!, xs.slice(2)))([allI, allT, ...heads.map((p) => p.variable)]);
    const logits = this.pairLoss.logits(allI, allT, heads.map((p) => p.variable));
    const [gI, gT, ...gHeads] = grads as Tensor[];
    const offset = (strategy?.globalRank ?? 0) * n;
    const gi = tf.tidy(() => tf.mul(tf.slice(gI!, offset, n), world));
    const gt = tf.tidy(() => tf.mul(tf.slice(gT!, offset, n), world));
    tf.dispose([gI!, gT!]);
    if (allI !== zi) tf.dispose([allI, allT]);
    grad.beforeBackward(value);
    return { loss: value, logits, gi, gt, gHeads };
  }

  private addHeadGradients(grad: GradientContext, gHeads: Tensor[]): void {
    this.headParameters().forEach((p, i) => (p.requiresGrad ? grad.accumulateGrad(p, gHeads[i]!) : gHeads[i]!.dispose()));
  }

  /** DDP without gradient caching: one recorded forward, all-gather, back-propagate the local slice. */
  private async gatheredGradients(batch: ImageTextPairs, grad: GradientContext): Promise<{ loss: Tensor; logits: Tensor }> {
    const rec = RecordedForward.record(() => [F.normalize(this.model.encodeImage(batch.images)), F.normalize(this.model.encodeText(batch.texts))]);
    let g: Awaited<ReturnType<ClipWrapper['globalLoss']>>;
    try {
      g = await this.globalLoss(rec.outputs[0]!, rec.outputs[1]!, grad);
    } catch (err) {
      rec.dispose();
      throw err;
    }
    const heads = new Set(this.headParameters());
    const params = this.parameters().filter((p) => p.requiresGrad && !heads.has(p));
    const towerGrads = rec.backward([g.gi, g.gt], params.map((p) => p.variable));
    params.forEach((p, i) => {
      const t = towerGrads[i];
      if (t) grad.accumulateGrad(p, t);
    });
    this.addHeadGradients(grad, g.gHeads);
    tf.dispose([g.gi, g.gt]);
    return { loss: g.loss, logits: g.logits };
  }

  /** Gradient caching: cache pass, loss on cached features, gradient pass per chunk with the cache pass's randomness. */
  private async cachedGradients(batch: ImageTextPairs, grad: GradientContext): Promise<{ loss: Tensor; logits: Tensor }> {
    const { images, texts } = batch;
    const m = this.minibatchSize;
    const imageStates: number[][] = [];
    const textStates: number[][] = [];
    const zi = this.cachedFeatures((x) => this.model.encodeImage(x), images, m, imageStates);
    const zt = this.cachedFeatures((x) => this.model.encodeText(x), texts, m, textStates);
    const after = defaultGenerator.getState();
    let g: Awaited<ReturnType<ClipWrapper['globalLoss']>>;
    try {
      g = await this.globalLoss(zi, zt, grad);
    } finally {
      tf.dispose([zi, zt]);
    }
    try {
      chunks(images.shape[0]!, m).forEach(([start, len], i) => {
        defaultGenerator.setState(imageStates[i]!);
        grad.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeImage(tf.slice(images, start, len))), tf.slice(g.gi, start, len)))).dispose();
        defaultGenerator.setState(textStates[i]!);
        grad.backward(() => tf.sum(tf.mul(F.normalize(this.model.encodeText(tf.slice(texts, start, len))), tf.slice(g.gt, start, len)))).dispose();
      });
    } finally {
      // Continue the stream where the cache pass left it, as if the batch had run once.
      defaultGenerator.setState(after);
      tf.dispose([g.gi, g.gt]);
    }
    this.addHeadGradients(grad, g.gHeads);
    return { loss: g.loss, logits: g.logits };
  }

  /**
   * The loss of one batch on this process in one tape (no gradient caching, no gather):
   * the definition {@link trainingGradients} differentiates. The Trainer calls
   * `trainingGradients`; this is for use inside a tape of your own.
   */
  override trainingStep(batch: ImageTextPairs): Tensor {
    return tf.tidy(() =>
      this.featureLoss(F.normalize(this.model.encodeImage(batch.images)), F.normalize(this.model.encodeText(batch.texts)), this.headParameters().map((p) => p.variable)),
    );
  }

  /** The Trainer's entry point: the batch's gradients (gradient caching, all-gather), then the logs. */
  override async trainingGradients(batch: ImageTextPairs, _batchIdx: number, grad: GradientContext): Promise<{ loss: Tensor }> {
    const n = batch.images.shape[0]!;
    const world = this.trainer?.strategy.worldSize ?? 1;
    const { loss, logits } = await this.computeGradients(batch, grad);
    const acc = retrievalAccuracy(logits);
    logits.dispose();
    const bs = n * world;
    this.log('train_loss', loss, { progBar: true, batchSize: bs });
    this.log('train_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: bs });
    this.log('logit_scale', Math.exp(this.logitScale.variable.dataSync()[0]!));
    return { loss };
  }

  /** The Trainer's optimizer step, then the clamp and {@link afterOptimizerStep}: once per optimizer step. */
  override async optimizerStep(epoch: number, batchIdx: number, optimizer: OptimizerLike, closure: () => Promise<void>): Promise<void> {
    await super.optimizerStep(epoch, batchIdx, optimizer, closure);
    this.clampLogitScale();
    this.afterOptimizerStep();
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
    // Each rank validates its own shard: the epoch values are averaged over ranks (syncDist).
    this.log('val_loss', this.featureLoss(zi, zt, heads), { progBar: true, batchSize: n, syncDist: true });
    this.log('val_acc_i2t', acc.imageToText, { batchSize: n, syncDist: true });
    this.log('val_acc_t2i', acc.textToImage, { batchSize: n, syncDist: true });
    this.log('val_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: n, syncDist: true });
  }
}

/** [start, length] of consecutive chunks of at most `size` covering 0..n-1. */
export function chunks(n: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(size, n - s)]);
  return out;
}

/** Gradients straight into `param.grad`, no hooks, no scaling: `computeGradients` outside a Trainer. */
export class PlainGradients implements GradientContext {
  readonly scale = 1;
  constructor(private readonly module: Module) {}
  beforeBackward(): void {}
  backward(lossFn: () => Tensor): Tensor {
    return backward(this.module.parameters(), lossFn);
  }
  accumulateGrad(param: Parameter, grad: Tensor): void {
    param.accumulateGrad(grad);
  }
}
