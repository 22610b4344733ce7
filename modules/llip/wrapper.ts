/**
 * `LlipWrapper`: trains a {@link LlipModel} contrastively over the caption-conditioned
 * similarities s_ij (SigLIP by default, InfoNCE as an option), with the CLIP recipe's
 * AdamW + linear warmup + cosine, the log scale clamped to [0, ln 100] after each step.
 * Registered as `--model llip`.
 *
 * Under DDP each rank conditions its own images on the all-gathered texts, giving its rows
 * S_r `[n, N]` of the global similarity matrix. The rows are all-gathered (values only:
 * N² floats) so every rank evaluates the global-batch loss — InfoNCE's text→image
 * direction needs whole columns — and differentiates it with respect to its own rows. The
 * gradient reaching the gathered texts is all-reduced so each rank gets the full gradient
 * of its own texts; tower and cross-attention gradients are scaled by the world size and
 * the scale/bias gradients (already global) are not, so DDP's averaging yields exactly the
 * global-batch gradient. This costs a second forward pass of the towers (features first,
 * then again on the tape) — the same trade as gradient caching — but never more memory
 * than the local batch.
 */
import { tf, type Tensor, type Variable } from '../../core/tf.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { LightningModule, type GradientContext } from '../../core/module.js';
import * as F from '../../core/nn/functional.js';
import type { Parameter } from '../../core/nn/module.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { openClipOptim, type OpenClipOptimOptions } from '../../core/optim/openClipSchedule.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { registerClass } from '../../core/registry.js';
import type { OptimizerConfig, OptimizerLike } from '../../core/types.js';
import type { ClipConfig } from '../clip/config.js';
import { retrievalAccuracy } from '../losses/clipLoss.js';
import { PlainGradients } from '../wrappers/clipWrapper.js';
import { siglipFromLogits } from '../losses/siglip.js';
import { LlipModel, type LlipOptions } from './model.js';

/** A batch of image–text pairs. */
export interface LlipBatch {
  images: Tensor;
  texts: Tensor;
}

/** Options of {@link LlipWrapper} (and of `--model llip --model_args '{...}'`). */
export interface LlipWrapperOptions extends Partial<LlipOptions> {
  /** A built model; otherwise built from `modelName` + `numMixtureTokens`. */
  model?: LlipModel;
  /** Tower config name or JSON path (default ViT-B/16). */
  modelName?: string | ClipConfig;
  /** Training image size (re-sizes the positional embeddings). */
  imageSize?: number;
  /** 'siglip' (default, as Llip) or 'infonce'. */
  loss?: 'siglip' | 'infonce';
  lr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  totalSteps?: number;
  hparams?: Record<string, unknown>;
  /** open_clip's `--lr_scheduler`, cooldown and `--grad_clip_norm`. */
  openClip?: OpenClipOptimOptions;
}

/** The loss of a similarity matrix `[n, N]` whose positives sit at column `offset + row`. */
export function llipLoss(similarity: Tensor, logScale: Tensor, bias: Tensor, kind: 'siglip' | 'infonce'): Tensor {
  return tf.tidy(() => {
    const n = similarity.shape[0]!;
    if (kind === 'siglip') return siglipFromLogits(tf.add(tf.mul(similarity, tf.exp(logScale)), bias));
    const logits = tf.mul(similarity, tf.exp(logScale));
    const y = tf.range(0, n, 1, 'int32');
    return tf.div(tf.add(F.crossEntropy(logits, y), F.crossEntropy(tf.transpose(logits), y)), 2);
  });
}

@registerClass('model', 'llip', { description: 'Llip: ViT with K mixture tokens, text-conditioned image embeddings (SigLIP or InfoNCE)' })
export class LlipWrapper extends LightningModule<LlipBatch> {
  readonly model: LlipModel;
  readonly lossKind: 'siglip' | 'infonce';
  private readonly o: Required<Pick<LlipWrapperOptions, 'lr' | 'warmupSteps' | 'weightDecay'>> & Pick<LlipWrapperOptions, 'betas' | 'eps' | 'totalSteps' | 'openClip'>;

  constructor(options: LlipWrapperOptions = {}) {
    super();
    let model = options.model;
    if (!model) {
      const k = options.numMixtureTokens;
      if (k === undefined) throw new MisconfigurationError('Llip needs `--num_mixture_tokens K` (32 for ViT-B/16 as released, 64 for ViT-G/14).');
      model = new LlipModel(options.modelName ?? 'ViT-B/16', { numMixtureTokens: k, heads: options.heads, temperature: options.temperature, patchDropout: options.patchDropout, imageSize: options.imageSize });
    }
    this.model = this.registerModule('model', model);
    this.lossKind = options.loss ?? 'siglip';
    if (this.lossKind !== 'siglip' && this.lossKind !== 'infonce') throw new MisconfigurationError(`Llip's loss must be 'siglip' or 'infonce', got ${showValue(options.loss)}.`);
    if (this.lossKind === 'infonce') tf.tidy(() => this.model.logitScale.variable.assign(tf.scalar(Math.log(1 / 0.07))));
    // InfoNCE has no bias: keep it out of the optimizer so it stays at its value.
    if (this.lossKind === 'infonce') this.model.logitBias.requiresGrad = false;
    this.o = { lr: options.lr ?? 5e-4, warmupSteps: options.warmupSteps ?? 2000, weightDecay: options.weightDecay ?? 0.2, betas: options.betas, eps: options.eps, totalSteps: options.totalSteps, openClip: options.openClip };
    if (!(this.o.lr > 0)) throw new MisconfigurationError(`\`--lr\` must be a positive number, got ${showValue(options.lr)}.`);
    this.saveHyperparameters({
      ...options.hparams,
      model: 'llip',
      num_mixture_tokens: this.model.numMixtureTokens,
      llip_heads: this.model.mixtureAttn.heads,
      llip_temperature: this.model.mixtureAttn.temperature,
      loss: this.lossKind,
      lr: this.o.lr,
      warmup_steps: this.o.warmupSteps,
      weight_decay: this.o.weightDecay,
    });
  }

  override configureOptimizers(): OptimizerConfig {
    const groups = weightDecayParamGroups(this.namedParameters().filter(([, p]) => p.requiresGrad), this.o.weightDecay);
    const optimizer = new AdamW(groups, { lr: this.o.lr, betas: this.o.betas ?? [0.9, 0.98], eps: this.o.eps ?? 1e-6, weightDecay: this.o.weightDecay });
    const total = this.o.totalSteps ?? this.trainer?.estimatedSteppingBatches ?? 1;
    const warmup = Math.min(this.o.warmupSteps, Math.max(0, total - 1));
    const scheduler = openClipOptim(optimizer, this.o.openClip, { warmup, total: Math.max(total, warmup + 1), maxEpochs: this.trainer?.maxEpochs }) ??
      new CosineWarmupScheduler(optimizer, { warmupSteps: warmup, totalSteps: Math.max(total, warmup + 1) });
    return { optimizer, lrScheduler: { scheduler, interval: 'step' } };
  }

  /**
   * Adds the global-batch gradient through `grad` (the Trainer's GradientContext: zero-grad,
   * accumulation scaling and hooks are the Trainer's); returns the loss and this rank's
   * similarity rows (caller disposes).
   */
  async computeGradients(batch: LlipBatch, grad: GradientContext = new PlainGradients(this)): Promise<{ loss: Tensor; similarity: Tensor }> {
    const { images, texts } = batch;
    const strategy = this.trainer?.strategy;
    const world = strategy?.worldSize ?? 1;
    const m = this.model;
    if (world === 1) {
      let kept: Tensor | null = null;
      const loss = grad.backward(() => {
        const s = m.similarity(m.encodeImage(images), F.normalize(m.encodeText(texts)));
        kept = tf.keep(s);
        return llipLoss(s, m.logitScale.variable, m.logitBias.variable, this.lossKind);
      });
      return { loss, similarity: kept! };
    }
    const rank = strategy!.globalRank;
    const n = images.shape[0]!;
    // 1. Features without the tape; texts and similarity rows gathered.
    const h = tf.tidy(() => m.encodeImage(images));
    const t = tf.tidy(() => F.normalize(m.encodeText(texts)));
    const tAll = await this.flatGather(t);
    const rows = tf.tidy(() => m.similarity(h, tAll));
    const sAll = await this.flatGather(rows);
    // 2. Global loss, differentiated with respect to this rank's rows only.
    const hv = tf.variable(h, true);
    const tv = tf.variable(tAll, true);
    const attn = m.mixtureAttn.parameters();
    const heads = [m.logitScale, m.logitBias].filter((p) => p.requiresGrad);
    const vars: Variable[] = [hv, tv, ...attn.map((p) => p.variable), ...heads.map((p) => p.variable)];
    const total = sAll.shape[0]!;
    const { value, grads } = tf.variableGrads(() => {
      const mine = m.similarity(hv, tv);
      const parts = [rank > 0 ? tf.slice(sAll, 0, rank * n) : null, mine, (rank + 1) * n < total ? tf.slice(sAll, (rank + 1) * n) : null].filter((x): x is Tensor => x !== null);
      return llipLoss(tf.concat(parts), m.logitScale.variable, m.logitBias.variable, this.lossKind) as tf.Scalar;
    }, vars);
    // 3. Texts' gradient summed over ranks; this rank's slice.
    const gT = Float32Array.from(grads[tv.name]!.dataSync() as Float32Array);
    await (strategy as unknown as { processGroup: { allReduce(a: Float32Array, op: 'sum'): Promise<Float32Array> } }).processGroup.allReduce(gT, 'sum');
    const d = t.shape[1]!;
    const gTown = tf.tidy(() => tf.mul(tf.tensor2d(gT.subarray(rank * n * d, (rank + 1) * n * d), [n, d]), world));
    const gH = tf.tidy(() => tf.mul(grads[hv.name]!, world));
    // 4. Back-propagate through the towers; ×world for DDP's averaging.
    grad.beforeBackward(value);
    grad.backward(() => tf.add(tf.sum(tf.mul(m.encodeImage(images), gH)), tf.sum(tf.mul(F.normalize(m.encodeText(texts)), gTown)))).dispose();
    for (const p of attn) if (p.requiresGrad) grad.accumulateGrad(p, tf.tidy(() => tf.mul(grads[p.variable.name]!, world)));
    for (const p of heads) grad.accumulateGrad(p, tf.clone(grads[p.variable.name]!));
    tf.dispose([h, t, tAll, sAll, hv, tv, gTown, gH, ...Object.values(grads)]);
    return { loss: value, similarity: rows };
  }

  private async flatGather(x: Tensor): Promise<Tensor> {
    const g = await this.allGather(x);
    const out = tf.reshape(g, [-1, ...x.shape.slice(1)]);
    g.dispose();
    return out;
  }

  /** The loss of one batch on this process in one tape (the definition trainingGradients differentiates). */
  override trainingStep(batch: LlipBatch): Tensor {
    const m = this.model;
    return tf.tidy(() => llipLoss(m.similarity(m.encodeImage(batch.images), F.normalize(m.encodeText(batch.texts))), m.logitScale.variable, m.logitBias.variable, this.lossKind));
  }

  /** The Trainer's entry point: the batch's gradients (all-gathered texts under DDP), then the logs. */
  override async trainingGradients(batch: LlipBatch, _batchIdx: number, grad: GradientContext): Promise<{ loss: Tensor }> {
    const { loss, similarity } = await this.computeGradients(batch, grad);
    const bs = batch.images.shape[0]! * (this.trainer?.strategy.worldSize ?? 1);
    // Retrieval accuracy of this rank's rows (their positives sit at columns rank·n + i).
    const n = batch.images.shape[0]!;
    const offset = (this.trainer?.strategy.globalRank ?? 0) * n;
    const block = tf.slice(similarity, [0, offset], [n, n]);
    const acc = retrievalAccuracy(block);
    tf.dispose([block, similarity]);
    this.log('train_loss', loss, { progBar: true, batchSize: bs });
    this.log('train_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: bs });
    this.log('logit_scale', Math.exp(this.model.logitScale.variable.dataSync()[0]!));
    return { loss };
  }

  /** The Trainer's optimizer step, then the logit-scale clamp (once per optimizer step, not per batch). */
  override async optimizerStep(epoch: number, batchIdx: number, optimizer: OptimizerLike, closure: () => Promise<void>): Promise<void> {
    await super.optimizerStep(epoch, batchIdx, optimizer, closure);
    this.model.clampLogitScale();
  }

  override validationStep(batch: LlipBatch): void {
    const m = this.model;
    const s = m.similarity(m.encodeImage(batch.images), F.normalize(m.encodeText(batch.texts)));
    const n = batch.images.shape[0]!;
    const acc = retrievalAccuracy(s);
    this.log('val_loss', llipLoss(s, m.logitScale.variable, m.logitBias.variable, this.lossKind), { progBar: true, batchSize: n });
    this.log('val_acc', (acc.imageToText + acc.textToImage) / 2, { progBar: true, batchSize: n });
    s.dispose();
  }

  /** The parameters whose gradient this wrapper sets directly (for tests). */
  headParameters(): Parameter[] {
    return [...this.model.mixtureAttn.parameters(), this.model.logitScale, this.model.logitBias];
  }
}
