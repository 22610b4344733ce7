/**
 * The image–text loss of a two-tower wrapper, as a pluggable object: symmetric InfoNCE
 * (CLIP) or the SigLIP sigmoid loss. A wrapper asks it for the parameters the loss uses
 * directly (the log scale, and SigLIP's bias), the value of the logit scale to start from,
 * and the loss of a (global) batch of normalised features.
 */
import { tf, type Tensor } from '../../core/tf.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Module, type Parameter } from '../../core/nn/module.js';
import { clipLossCore } from './clipLoss.js';
import { SIGLIP_DIST_IMPLS, SIGLIP_LOGIT_BIAS_INIT, SIGLIP_LOGIT_SCALE_INIT, siglipLoss, siglipLossAndGrads, type SiglipCollectives, type SiglipDistImpl, type SiglipGrads } from './siglip.js';

export type PairLossName = 'infonce' | 'siglip';

/** A loss over L2-normalised image and text features. */
export interface PairLoss {
  readonly name: PairLossName;
  /** Parameters of the loss itself (SigLIP's `logit_bias`), registered by the wrapper as `loss.*`; null for none. */
  readonly module: Module | null;
  /** The value `logit_scale` starts from (null: keep the model's). */
  readonly logitScaleInit: number | null;
  /** Parameters the loss reads besides the features: `[logitScale, ...own]`. */
  heads(logitScale: Parameter): Parameter[];
  /** Loss of a batch from features `[N, D]` and the values of {@link heads}, in order. */
  loss(imageFeatures: Tensor, textFeatures: Tensor, heads: Tensor[]): Tensor;
  /** Logits for retrieval accuracy (monotone in the similarity). */
  logits(imageFeatures: Tensor, textFeatures: Tensor, heads: Tensor[]): Tensor;
}

/** CLIP's symmetric InfoNCE. */
export class InfoNceLoss implements PairLoss {
  readonly name = 'infonce' as const;
  readonly module = null;
  readonly logitScaleInit = null;
  heads(logitScale: Parameter): Parameter[] {
    return [logitScale];
  }
  loss(zi: Tensor, zt: Tensor, heads: Tensor[]): Tensor {
    return clipLossCore(zi, zt, tf.exp(heads[0]!));
  }
  logits(zi: Tensor, zt: Tensor, heads: Tensor[]): Tensor {
    return tf.tidy(() => tf.mul(tf.matMul(zi, zt, false, true), tf.exp(heads[0]!)));
  }
}

/** Holds SigLIP's learnable bias (`logit_bias`, init −10). */
export class SiglipBias extends Module {
  readonly logitBias: Parameter;
  constructor(init = SIGLIP_LOGIT_BIAS_INIT) {
    super();
    this.logitBias = this.registerParameter('logit_bias', tf.scalar(init));
  }
}

/**
 * SigLIP (open_clip's `--siglip`): the log scale starts at ln 10, the bias at −10.
 * `distImpl` picks how text blocks travel under DDP (see siglip.ts).
 */
export class SiglipPairLoss implements PairLoss {
  readonly name = 'siglip' as const;
  readonly module: SiglipBias;
  readonly logitScaleInit = SIGLIP_LOGIT_SCALE_INIT;
  readonly distImpl: SiglipDistImpl;
  constructor(options: { distImpl?: SiglipDistImpl; biasInit?: number } = {}) {
    this.module = new SiglipBias(options.biasInit);
    this.distImpl = options.distImpl ?? 'bidir';
    if (!SIGLIP_DIST_IMPLS.includes(this.distImpl)) {
      throw new MisconfigurationError(`\`--siglip_dist_impl\` must be one of ${SIGLIP_DIST_IMPLS.join(', ')}, got ${showValue(this.distImpl)}.`);
    }
  }
  heads(logitScale: Parameter): Parameter[] {
    return [logitScale, this.module.logitBias];
  }
  loss(zi: Tensor, zt: Tensor, heads: Tensor[]): Tensor {
    return siglipLoss(zi, zt, heads[0]!, heads[1]!);
  }
  logits(zi: Tensor, zt: Tensor, heads: Tensor[]): Tensor {
    return tf.tidy(() => tf.add(tf.mul(tf.matMul(zi, zt, false, true), tf.exp(heads[0]!)), heads[1]!));
  }
  /** This rank's loss and gradients with the communication of `distImpl` (exact global-batch gradients after DDP averaging). */
  distributed(zi: Tensor, zt: Tensor, heads: Tensor[], comm: SiglipCollectives): Promise<SiglipGrads> {
    return siglipLossAndGrads(zi, zt, heads[0]!, heads[1]!, comm, this.distImpl);
  }
}

/** `'infonce'`, `'siglip'` or a PairLoss object → a PairLoss. */
export function resolvePairLoss(loss: PairLossName | PairLoss | undefined, options: { distImpl?: SiglipDistImpl } = {}): PairLoss {
  if (loss === undefined || loss === 'infonce') return new InfoNceLoss();
  if (loss === 'siglip') return new SiglipPairLoss(options);
  if (typeof loss === 'object') return loss;
  throw new MisconfigurationError(`The loss must be 'infonce' or 'siglip', got ${showValue(loss)}.`);
}
