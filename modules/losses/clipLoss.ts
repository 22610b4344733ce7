import { tf, type Tensor } from '../../core/tf.js';
import * as F from '../../core/nn/functional.js';

/**
 * CLIP's symmetric InfoNCE (Radford et al. 2021, Fig. 3): with L = s·I·Tᵀ,
 * loss = (CE(L, labels) + CE(Lᵀ, labels)) / 2. `imageFeatures` and `textFeatures` are
 * L2-normalised `[N, D]`; `logitScale` is the already-exponentiated scale (a scalar
 * tensor or number); `labels` default to 0..N-1 (the i-th image matches the i-th text).
 */
export function clipLossCore(imageFeatures: Tensor, textFeatures: Tensor, logitScale: Tensor | number, labels?: Tensor): Tensor {
  return tf.tidy(() => {
    const logits = tf.mul(tf.matMul(imageFeatures, textFeatures, false, true), logitScale);
    const y = labels ?? tf.range(0, imageFeatures.shape[0]!, 1, 'int32');
    return tf.div(tf.add(F.crossEntropy(logits, y), F.crossEntropy(tf.transpose(logits), y)), 2);
  });
}

/** Top-1 retrieval accuracies of a logits matrix whose diagonal holds the matches. */
export function retrievalAccuracy(logitsPerImage: Tensor): { imageToText: number; textToImage: number } {
  const n = logitsPerImage.shape[0]!;
  const [i2t, t2i] = tf.tidy(() => {
    const target = tf.range(0, n, 1, 'int32');
    return [
      tf.sum(tf.cast(tf.equal(tf.argMax(logitsPerImage, 1), target), 'float32')),
      tf.sum(tf.cast(tf.equal(tf.argMax(logitsPerImage, 0), target), 'float32')),
    ];
  });
  const out = { imageToText: i2t!.dataSync()[0]! / n, textToImage: t2i!.dataSync()[0]! / n };
  tf.dispose([i2t!, t2i!]);
  return out;
}

/** Options of {@link ClipLoss}, as open_clip's `ClipLoss`. */
export interface ClipLossOptions {
  /** Each rank scores only its own rows against the gathered batch (open_clip's `local_loss`). */
  localLoss?: boolean;
  rank?: number;
  worldSize?: number;
}

/**
 * A small class around {@link clipLossCore}: builds the labels (offset by `n·rank` under
 * `localLoss`, where this rank's N images are scored against all gathered texts).
 * Features arrive already gathered; gathering lives in strategies.
 */
export class ClipLoss {
  readonly localLoss: boolean;
  readonly rank: number;
  readonly worldSize: number;

  constructor(options: ClipLossOptions = {}) {
    this.localLoss = options.localLoss ?? false;
    this.rank = options.rank ?? 0;
    this.worldSize = options.worldSize ?? 1;
  }

  /** Labels for `n` local rows. */
  groundTruth(n: number): Tensor {
    const offset = this.localLoss && this.worldSize > 1 ? n * this.rank : 0;
    return tf.range(offset, offset + n, 1, 'int32');
  }

  /**
   * `{ contrastiveLoss }` for local features against (possibly gathered) features.
   * Under `localLoss`, `imageFeatures`/`textFeatures` are this rank's and the `all*`
   * arguments the gathered ones; otherwise pass the gathered features as the first two.
   */
  forward(imageFeatures: Tensor, textFeatures: Tensor, logitScale: Tensor | number, allImage?: Tensor, allText?: Tensor): { contrastiveLoss: Tensor } {
    return tf.tidy(() => {
      if (!this.localLoss || !allImage || !allText) {
        return { contrastiveLoss: clipLossCore(imageFeatures, textFeatures, logitScale) };
      }
      const labels = this.groundTruth(imageFeatures.shape[0]!);
      const li = tf.mul(tf.matMul(imageFeatures, allText, false, true), logitScale);
      const lt = tf.mul(tf.matMul(textFeatures, allImage, false, true), logitScale);
      return { contrastiveLoss: tf.div(tf.add(F.crossEntropy(li, labels), F.crossEntropy(lt, labels)), 2) };
    });
  }
}
