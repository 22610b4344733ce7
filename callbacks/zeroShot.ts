import { tf, type Tensor } from '../core/tf.js';
import { Callback } from '../core/callback.js';
import type { DataLoader } from '../core/datamodule.js';
import { MisconfigurationError } from '../core/errors.js';
import type { LightningModule } from '../core/module.js';
import * as F from '../core/nn/functional.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';

/** Image and text encoders of a CLIP-like model (unnormalised features). */
export interface ZeroShotEncoders {
  encodeImage(images: Tensor): Tensor;
  encodeText(tokens: Tensor): Tensor;
  /**
   * Scores `[B, C]` of images against the classifier `[D, C]`, for models whose image
   * embedding depends on the caption (Llip: every class embedding conditions every image).
   * Absent: cosine of the normalised image features with the classifier.
   */
  zeroShotLogits?(images: Tensor, classifier: Tensor): Tensor;
}

/** Batches for zero-shot evaluation: NHWC images and int32 class labels. */
export interface ZeroShotBatch {
  images: Tensor;
  labels: Tensor;
}

/**
 * The zero-shot classifier (Radford et al. 2021, §3.1.4; open_clip's
 * `build_zero_shot_classifier`): for each class, the mean of the L2-normalised text
 * features of its prompts (one per template), renormalised. `classTokens[c]` holds the
 * tokenised prompts of class c, `[numTemplates, contextLength]`. Returns `[D, C]`.
 */
export function zeroShotClassifier(encoders: ZeroShotEncoders, classTokens: readonly Tensor[]): Tensor {
  const columns = classTokens.map((tokens) =>
    tf.tidy(() => {
      const mean = tf.mean(F.normalize(encoders.encodeText(tokens)), 0);
      return F.normalize(mean);
    }),
  );
  const out = tf.stack(columns, 1);
  tf.dispose(columns);
  return out;
}

/** Top-k accuracies of image features against a zero-shot classifier. */
export interface TopKResult {
  top1: number;
  top5: number;
  count: number;
}

/**
 * Top-1 and top-5 accuracy over a loader (a sample counts for top-k when its label is
 * among the k highest logits; with fewer than 5 classes top-5 is over all of them).
 */
export async function zeroShotAccuracy(encoders: ZeroShotEncoders, classifier: Tensor, loader: DataLoader<ZeroShotBatch>): Promise<TopKResult> {
  const numClasses = classifier.shape[1]!;
  let c1 = 0;
  let c5 = 0;
  let n = 0;
  for await (const batch of loader) {
    const [hit1, hit5] = tf.tidy(() => {
      const logits = encoders.zeroShotLogits ? encoders.zeroShotLogits(batch.images, classifier) : tf.matMul(F.normalize(encoders.encodeImage(batch.images)), classifier);
      const k = Math.min(5, numClasses);
      const top = tf.topk(logits, k).indices;
      const eq = tf.cast(tf.equal(top, tf.expandDims(batch.labels, 1)), 'float32');
      return [tf.sum(tf.slice(eq, [0, 0], [-1, 1])), tf.sum(eq)];
    });
    c1 += hit1!.dataSync()[0]!;
    c5 += hit5!.dataSync()[0]!;
    n += batch.images.shape[0]!;
    tf.dispose([hit1!, hit5!, batch.images, batch.labels]);
  }
  if (n === 0) throw new MisconfigurationError('Zero-shot evaluation found no images to classify.');
  return { top1: c1 / n, top5: c5 / n, count: n };
}

/** Options of {@link ZeroShotEval}. */
export interface ZeroShotEvalOptions {
  /** Labelled images (e.g. `LabelledImageLoader` over an ImageNet-style folder). */
  dataloader: DataLoader<ZeroShotBatch>;
  /** Tokenised prompts per class, `[numTemplates, contextLength]` each (owned by the callback). */
  classTokens: Tensor[];
  /** Evaluate every n epochs (default 1). */
  everyNEpochs?: number;
  /** Metric name prefix (default `zeroshot`: logs `zeroshot_top1`, `zeroshot_top5`). */
  prefix?: string;
  /** Returns the encoders of the module (default: `module.model`, as ClipWrapper holds it). */
  encoders?: (module: LightningModule) => ZeroShotEncoders;
}

/**
 * Zero-shot classification during training (open_clip's `zero_shot_eval`): after each
 * validation (or training epoch end without validation), builds the classifier from the
 * prompts and logs top-1/top-5 to the loggers and `callbackMetrics` (so ModelCheckpoint
 * can monitor `zeroshot_top1`).
 */
export class ZeroShotEval extends Callback {
  /** Results by epoch. */
  readonly history: Array<{ epoch: number } & TopKResult> = [];
  private readonly o: Required<Omit<ZeroShotEvalOptions, 'encoders'>> & Pick<ZeroShotEvalOptions, 'encoders'>;
  private ranThisEpoch = false;

  constructor(options: ZeroShotEvalOptions) {
    super();
    if (!options?.dataloader || !Array.isArray(options.classTokens) || options.classTokens.length === 0) {
      throw new MisconfigurationError('`ZeroShotEval` needs a `dataloader` and at least one class in `classTokens`.');
    }
    this.o = { everyNEpochs: 1, prefix: 'zeroshot', ...options };
  }

  override onTrainEpochStart(): void {
    this.ranThisEpoch = false;
  }

  override async onValidationEnd(trainer: Trainer, module: LightningModule): Promise<void> {
    if (trainer.sanityChecking || trainer.stage !== 'fit') return;
    await this.maybeRun(trainer, module);
  }

  override async onTrainEpochEnd(trainer: Trainer, module: LightningModule): Promise<void> {
    await this.maybeRun(trainer, module);
  }

  private async maybeRun(trainer: Trainer, module: LightningModule): Promise<void> {
    if (this.ranThisEpoch || (trainer.currentEpoch + 1) % this.o.everyNEpochs !== 0) return;
    this.ranThisEpoch = true;
    const result = await this.evaluate(module);
    this.history.push({ epoch: trainer.currentEpoch, ...result });
    const metrics = { [`${this.o.prefix}_top1`]: result.top1, [`${this.o.prefix}_top5`]: result.top5 };
    Object.assign(trainer.callbackMetrics, metrics);
    trainer.loggerConnector.logMetrics(metrics, trainer.globalStep);
  }

  /** Runs the evaluation now with `module` in eval mode. */
  async evaluate(module: LightningModule): Promise<TopKResult> {
    const encoders = this.o.encoders ? this.o.encoders(module) : (module as unknown as { model: ZeroShotEncoders }).model;
    if (!encoders || typeof encoders.encodeImage !== 'function') {
      throw new MisconfigurationError('`ZeroShotEval` could not find the encoders: pass `encoders: (module) => ...`.');
    }
    const wasTraining = module.training;
    module.eval();
    try {
      const classifier = zeroShotClassifier(encoders, this.o.classTokens);
      try {
        return await zeroShotAccuracy(encoders, classifier, this.o.dataloader);
      } finally {
        classifier.dispose();
      }
    } finally {
      module.train(wasTraining);
    }
  }
}

register('callback', 'zeroshot', (o) => new ZeroShotEval(o as unknown as ZeroShotEvalOptions), { description: 'zero-shot classification accuracy' });
