/**
 * CatLIP (Mehta et al. 2024, CoreNet `projects/catlip`): image-text pre-training recast as
 * multi-label classification of the WordNet synsets mined from each caption. The image tower is
 * a ViT read out at the class token (ln_post), followed by a linear classifier over the synset
 * vocabulary; there is no text tower. Loss: BCE-with-logits summed over classes and averaged
 * over the batch (CoreNet's `binary_cross_entropy` with `reduction: batch_mean`); captions with
 * no synset in the vocabulary give all-zero targets and are still trained.
 *
 * Recipe defaults follow CoreNet's ViT-B/16 pre-training: AdamW (0.9, 0.999), eps 1e-8, weight
 * decay 0.2 on ≥2-D weights only, cosine 1e-3 → 1e-5 with linear warmup; gradient clipping 1.0
 * and EMA 0.9995 are Trainer options/callbacks that train.ts adds for `--model catlip`.
 */

import { MisconfigurationError } from '../../core/errors.js';
import { LightningModule } from '../../core/module.js';
import { Conv2d, init, LayerNorm, Linear, Module, type Parameter } from '../../core/nn/index.js';
import { AdamW } from '../../core/optim/adamw.js';
import { CosineWarmupScheduler } from '../../core/optim/lrScheduler.js';
import { weightDecayParamGroups } from '../../core/optim/paramGroups.js';
import { registerClass } from '../../core/registry.js';
import { tf, type Tensor } from '../../core/tf.js';
import type { OptimizerConfig } from '../../core/types.js';
import { resolveModelConfig } from '../clip/config.js';
import { applyLayerNorm, Transformer } from '../clip/transformer.js';
import { resizePosEmbed2d } from '../clip/posEmbed.js';
import { SynsetMiner } from './labeler.js';
import { SynsetVocabulary } from './vocabulary.js';

/** Shape of the CatLIP image tower. */
export interface CatlipVitOptions {
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  /** Classifier outputs (the vocabulary size, or the transfer task's classes). */
  numClasses: number;
}

/**
 * ViT (OpenAI layout: `conv1`, `class_embedding`, `positional_embedding`, `ln_pre`,
 * `transformer.resblocks.N`, `ln_post`) with exact GELU and a `classifier` Linear on the
 * class token. Input NHWC `[B, S, S, 3]`; output logits `[B, numClasses]`.
 */
export class CatlipVit extends Module {
  readonly conv1: Conv2d;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly lnPre: LayerNorm;
  readonly transformer: Transformer;
  readonly lnPost: LayerNorm;
  classifier: Linear;
  readonly grid: number;

  constructor(readonly options: CatlipVitOptions) {
    super();
    const { imageSize, patchSize, width, layers, heads, numClasses } = options;
    if (imageSize % patchSize !== 0) throw new MisconfigurationError(`CatLIP ViT: image size ${imageSize} is not a multiple of the patch size ${patchSize}`);
    if (!(Number.isInteger(numClasses) && numClasses > 0)) throw new MisconfigurationError(`CatLIP ViT: numClasses must be a positive integer, got ${numClasses}`);
    this.grid = imageSize / patchSize;
    const scale = width ** -0.5;
    this.conv1 = this.registerModule('conv1', new Conv2d(3, width, patchSize, { stride: patchSize, bias: false }));
    this.classEmbedding = this.registerParameter('class_embedding', init.normal([width], { std: scale }));
    this.positionalEmbedding = this.registerParameter('positional_embedding', init.normal([this.grid * this.grid + 1, width], { std: scale }));
    this.lnPre = this.registerModule('ln_pre', new LayerNorm(width));
    this.transformer = this.registerModule('transformer', new Transformer(width, layers, heads, { quickGelu: false }));
    this.lnPost = this.registerModule('ln_post', new LayerNorm(width));
    this.classifier = this.registerModule('classifier', CatlipVit.freshHead(width, numClasses));
  }

  /** A new classifier: weights trunc-normal(0.02), bias 0 (CoreNet's linear init). */
  static freshHead(width: number, numClasses: number): Linear {
    const head = new Linear(width, numClasses);
    tf.tidy(() => {
      head.weight.variable.assign(init.truncNormal([numClasses, width], { std: 0.02 }));
      head.bias!.variable.assign(tf.zeros([numClasses]));
    });
    return head;
  }

  /**
   * Class-token features after ln_post, `[B, width]`. Any input size that is a multiple of the
   * patch size is accepted (multi-scale batches): the positional table is resized 2-D.
   */
  features(images: Tensor): Tensor {
    const [b, h, w] = images.shape as [number, number, number, number];
    const { patchSize, width } = this.options;
    if (images.rank !== 4 || h % patchSize !== 0 || w % patchSize !== 0 || images.shape[3] !== 3) {
      throw new Error(`CatLIP ViT expects NHWC images [B, H, W, 3] with H and W multiples of ${patchSize}, got [${images.shape.join(', ')}]`);
    }
    const gh = h / patchSize;
    const gw = w / patchSize;
    return tf.tidy(() => {
      const patches = tf.reshape(this.conv1.forward(images), [b, gh * gw, width]);
      const cls = tf.broadcastTo(tf.reshape(this.classEmbedding.variable, [1, 1, width]), [b, 1, width]);
      const pos = gh === this.grid && gw === this.grid ? this.positionalEmbedding.variable : resizePosEmbed2d(this.positionalEmbedding.variable, gh, gw);
      const tokens = tf.add(tf.concat([cls, patches], 1), pos);
      const x = this.transformer.forward(applyLayerNorm(this.lnPre, tokens));
      return applyLayerNorm(this.lnPost, tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, width]), [b, width]));
    });
  }

  forward(images: Tensor): Tensor {
    return tf.tidy(() => this.classifier.forward(this.features(images)));
  }
}

/** BCE-with-logits summed over classes, averaged over the batch: Σ_{b,v} ℓ(x, y) / B. */
export function bceWithLogitsBatchMean(logits: Tensor, targets: Tensor): Tensor {
  return tf.tidy(() => {
    // max(x, 0) − x·y + log(1 + e^−|x|): stable for large |x|.
    const l = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.div(tf.sum(l), logits.shape[0]!);
  });
}

/** Options of {@link CatlipModule} (`--model catlip --model_args '{…}'`). */
export interface CatlipModuleOptions {
  /** CoreNet vocabulary pickle (`--vocab`), or a vocabulary object. */
  vocab: string | SynsetVocabulary;
  /** Keep the first N synsets (CoreNet's `vocab_size`, 24320 in its configs). Default: all. */
  vocabSize?: number;
  /** A ViT config of configs/ (`--model_name`), whose vision tower is used. Default ViT-B/16. */
  modelName?: string;
  imageSize?: number;
  lr?: number;
  minLr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  totalSteps?: number;
  hparams?: Record<string, unknown>;
}

interface CaptionedImages {
  images: Tensor;
  captions: string[];
}

/** CatLIP pre-training as a LightningModule; batches are any image-caption datamodule's. */
@registerClass('model', 'catlip', { description: 'CatLIP: ViT + synset classifier trained with BCE on WordNet synsets mined from captions (needs --vocab)' })
export class CatlipModule extends LightningModule<CaptionedImages> {
  readonly vocab: SynsetVocabulary;
  readonly miner: SynsetMiner;
  readonly net: CatlipVit;
  private readonly opts: Required<Omit<CatlipModuleOptions, 'vocab' | 'vocabSize' | 'totalSteps' | 'hparams' | 'imageSize' | 'modelName'>> & { totalSteps?: number };

  constructor(options: CatlipModuleOptions) {
    super();
    if (options?.vocab === undefined) throw new MisconfigurationError('`--model catlip` needs `--vocab vocab.pkl` (a CoreNet synset vocabulary; build one with `lightclip catlip vocab`).');
    this.vocab = typeof options.vocab === 'string' ? SynsetVocabulary.read(options.vocab, options.vocabSize) : options.vocabSize ? options.vocab.truncate(options.vocabSize) : options.vocab;
    this.miner = new SynsetMiner();
    const modelName = options.modelName ?? 'ViT-B/16';
    const cfg = resolveModelConfig(modelName);
    const v = cfg.vision;
    if (typeof v.layers !== 'number' || v.patchSize === null) throw new MisconfigurationError(`CatLIP needs a ViT image tower; \`--model_name ${modelName}\` is a ResNet.`);
    this.net = this.registerModule(
      'model',
      new CatlipVit({ imageSize: options.imageSize ?? v.imageSize, patchSize: v.patchSize, width: v.width, layers: v.layers, heads: v.heads || Math.max(1, v.width / 64), numClasses: this.vocab.size }),
    );
    this.opts = {
      lr: options.lr ?? 1e-3,
      minLr: options.minLr ?? 1e-5,
      warmupSteps: options.warmupSteps ?? 10000,
      weightDecay: options.weightDecay ?? 0.2,
      totalSteps: options.totalSteps,
    };
    this.saveHyperparameters({ ...options.hparams, model: 'catlip', model_name: modelName, image_size: this.net.options.imageSize, vocab_size: this.vocab.size, lr: this.opts.lr, min_lr: this.opts.minLr, warmup_steps: this.opts.warmupSteps, weight_decay: this.opts.weightDecay });
  }

  /** Dense multi-hot targets `[B, V]` of a batch's captions. */
  targets(captions: readonly string[]): { targets: Tensor; empty: number; positives: number } {
    const v = this.vocab.size;
    const data = new Float32Array(captions.length * v);
    let empty = 0;
    let positives = 0;
    captions.forEach((c, row) => {
      const labels = this.miner.labels(c, this.vocab);
      if (labels.length === 0) empty++;
      positives += labels.length;
      for (const i of labels) data[row * v + i] = 1;
    });
    return { targets: tf.tensor2d(data, [captions.length, v]), empty, positives };
  }

  override configureOptimizers(): OptimizerConfig {
    const groups = weightDecayParamGroups(this.namedParameters(), this.opts.weightDecay);
    const optimizer = new AdamW(groups, { lr: this.opts.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: this.opts.weightDecay });
    const total = this.opts.totalSteps ?? this.trainer?.estimatedSteppingBatches ?? 1;
    const warmup = Math.min(this.opts.warmupSteps, Math.max(0, total - 1));
    const scheduler = new CosineWarmupScheduler(optimizer, { warmupSteps: warmup, totalSteps: Math.max(total, warmup + 1), minLr: this.opts.minLr });
    return { optimizer, lrScheduler: { scheduler, interval: 'step' } };
  }

  /** The batch loss without logging (benchmarks, custom loops). */
  trainingStepLoss(batch: CaptionedImages): Tensor {
    const { targets } = this.targets(batch.captions);
    try {
      return bceWithLogitsBatchMean(this.net.forward(batch.images), targets);
    } finally {
      targets.dispose();
    }
  }

  override trainingStep(batch: CaptionedImages): Tensor {
    const { targets, empty, positives } = this.targets(batch.captions);
    const n = batch.captions.length;
    try {
      const loss = bceWithLogitsBatchMean(this.net.forward(batch.images), targets);
      this.log('train_loss', loss, { progBar: true, batchSize: n });
      this.log('labels_per_caption', positives / n, { batchSize: n });
      this.log('empty_targets', empty / n, { batchSize: n });
      return loss;
    } finally {
      targets.dispose();
    }
  }

  override validationStep(batch: CaptionedImages): void {
    const { targets } = this.targets(batch.captions);
    const loss = bceWithLogitsBatchMean(this.net.forward(batch.images), targets);
    this.log('val_loss', loss, { progBar: true, batchSize: batch.captions.length });
    targets.dispose();
  }
}

/**
 * Zero-shot-style classification with a pre-trained CatLIP head: each class is a synset key;
 * its score is the head's logit for that synset (the classifier row by synset offset).
 * Classes whose synset is not in the vocabulary cannot be scored and are reported.
 */
export function synsetClassifierColumns(vocab: SynsetVocabulary, classKeys: readonly string[]): { columns: number[]; missing: string[] } {
  const columns: number[] = [];
  const missing: string[] = [];
  for (const k of classKeys) {
    const i = vocab.indexOf(k);
    if (i === undefined) missing.push(k);
    else columns.push(i);
  }
  return { columns, missing };
}

/** Predicted class (index into `columns`) per image from CatLIP logits `[B, V]`. */
export function synsetZeroShotPredict(logits: Tensor, columns: readonly number[]): number[] {
  return tf.tidy(() => Array.from(tf.argMax(tf.gather(logits, tf.tensor1d(columns as number[], 'int32'), 1), 1).dataSync()));
}
