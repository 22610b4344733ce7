/**
 * OpenAI CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural
 * Language Supervision") as a lightclip module with OpenAI's state-dict names: `visual.*`
 * (a {@link VisionTransformer} or {@link ModifiedResNet}), the text tower at the root
 * (`token_embedding`, `positional_embedding`, `transformer`, `ln_final`, `text_projection`)
 * and `logit_scale`.
 *
 * The model computes features and logits, never a loss (open_clip's contract); losses live
 * in `modules/losses/`.
 */
import { Embedding, F, init, LayerNorm, Module, type Parameter } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { isResNetConfig, type ClipConfig } from './config.js';
import { ModifiedResNet } from './modifiedResnet.js';
import { encodeTextTower, initTextTower, type EncodeTextOptions, type TextTowerParts } from './textTransformer.js';
import { Transformer } from './transformer.js';
import { VisionTransformer } from './vit.js';

/** Initial `logit_scale`: ln(1/0.07), a temperature of 0.07 (Wu et al. 2018), as CLIP §2.5. */
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

/** Upper clamp of `logit_scale`: ln(100), "to prevent scaling the logits by more than 100" (CLIP §2.5). */
export const LOGIT_SCALE_MAX = Math.log(100);

/** What {@link CLIP.forward} returns; every tensor is new and owned by the caller. */
export interface ClipOutput {
  /** L2-normalised image features `[B, embed]`. */
  imageFeatures: Tensor;
  /** L2-normalised text features `[T, embed]`. */
  textFeatures: Tensor;
  /** `exp(logit_scale)`, a scalar tensor (the multiplier, not its log). */
  logitScale: Tensor;
  /** `logitScale · imageFeatures · textFeaturesᵀ`, `[B, T]`. */
  logitsPerImage: Tensor;
  /** The transpose, `[T, B]`. */
  logitsPerText: Tensor;
}

/** Options of {@link CLIP.encodeImage} and {@link CLIP.encodeText}. */
export interface EncodeOptions {
  /** L2-normalise the features (default false, as OpenAI and open_clip). */
  normalize?: boolean;
}

/** The image tower of a CLIP model. */
export type ClipVisual = VisionTransformer | ModifiedResNet;

/**
 * A CLIP model built from a {@link ClipConfig}, initialised as OpenAI's
 * `initialize_parameters` (see {@link CLIP.initializeParameters}).
 *
 * @example
 * ```ts
 * const model = createClip('ViT-B/32');
 * const { logitsPerImage } = model.forward(images, tokens); // images NHWC [B, 224, 224, 3], tokens int32 [B, 77]
 * ```
 */
export class CLIP extends Module implements TextTowerParts {
  readonly visual: ClipVisual;
  readonly transformer: Transformer;
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Parameter;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
  readonly logitScale: Parameter;
  /** The configuration the model was built from (a private copy). */
  readonly config: ClipConfig;

  /** @throws MisconfigurationError when the config's sizes are inconsistent (image size vs patch, heads vs width). */
  constructor(config: ClipConfig) {
    super();
    this.config = structuredClone(config);
    const { embedDim, vision, text, quickGelu } = this.config;
    // Registration order is OpenAI's, so stateDict() lists keys as PyTorch would.
    if (isResNetConfig(this.config)) {
      const layers = vision.layers as [number, number, number, number];
      this.visual = new ModifiedResNet({ layers, width: vision.width, heads: vision.heads, imageSize: vision.imageSize, outputDim: embedDim });
    } else {
      this.visual = new VisionTransformer({
        imageSize: vision.imageSize, patchSize: vision.patchSize!, width: vision.width,
        layers: vision.layers as number, heads: vision.heads, outputDim: embedDim, quickGelu,
      });
    }
    this.registerModule('visual', this.visual);
    this.transformer = this.registerModule('transformer', new Transformer(text.width, text.layers, text.heads, { quickGelu }));
    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(text.vocabSize, text.width));
    this.positionalEmbedding = this.registerParameter('positional_embedding', tf.zeros([text.contextLength, text.width]));
    this.lnFinal = this.registerModule('ln_final', new LayerNorm(text.width));
    this.textProjection = this.registerParameter('text_projection', tf.zeros([text.width, embedDim]));
    this.logitScale = this.registerParameter('logit_scale', tf.scalar(LOGIT_SCALE_INIT));
    this.initializeParameters();
  }

  /**
   * Re-initialises the weights as OpenAI's `CLIP.initialize_parameters`: the text tower as
   * {@link initTextTower}; for a ResNet, `attnpool`'s q/k/v/c projection weights N(0, 1/C)
   * with C = `c_proj`'s input width, and every bottleneck's last BatchNorm weight (`bn3`)
   * zero, so each residual block starts as the identity (Goyal et al. 2017). The ViT keeps
   * its own initialisation (`VisionTransformer`).
   */
  initializeParameters(): void {
    initTextTower(this);
    if (this.visual instanceof ModifiedResNet) {
      const pool = this.visual.attnpool;
      const std = pool.cProj.inFeatures ** -0.5;
      for (const proj of [pool.qProj, pool.kProj, pool.vProj, pool.cProj]) init.assignInit(proj.weight, (s) => init.normal(s, { std }));
      for (const block of this.visual.blocks()) {
        if (block.bn3.weight) init.assignInit(block.bn3.weight, init.zeros);
      }
    }
  }

  /** Square input resolution of the image tower. */
  get imageSize(): number {
    return this.config.vision.imageSize;
  }

  /** Longest token sequence the text tower accepts. */
  get contextLength(): number {
    return this.config.text.contextLength;
  }

  /** NHWC images `[B, imageSize, imageSize, 3]` → image features `[B, embed]` (unnormalised by default). */
  encodeImage(images: Tensor, options: EncodeOptions = {}): Tensor {
    const features = this.visual.forward(images);
    if (!options.normalize) return features;
    const out = F.normalize(features);
    features.dispose();
    return out;
  }

  /**
   * Token ids `[T, L]` (L ≤ context length; int32, EOT = the largest id) → text features
   * `[T, embed]` read at the EOT token (unnormalised by default). See
   * {@link EncodeTextOptions.trimPadding}.
   */
  encodeText(tokens: Tensor, options: EncodeOptions & EncodeTextOptions = {}): Tensor {
    const features = encodeTextTower(this, tokens, options);
    if (!options.normalize) return features;
    const out = F.normalize(features);
    features.dispose();
    return out;
  }

  /**
   * Encodes both modalities and returns normalised features, `exp(logit_scale)` and the
   * scaled cosine-similarity logits (open_clip's output plus OpenAI's logits). The caller
   * owns every returned tensor.
   */
  forward(images: Tensor, tokens: Tensor, options: EncodeTextOptions = {}): ClipOutput {
    return tf.tidy(() => {
      const imageFeatures = this.encodeImage(images, { normalize: true });
      const textFeatures = this.encodeText(tokens, { ...options, normalize: true });
      const logitScale = tf.exp(this.logitScale.variable);
      const logitsPerImage = tf.mul(tf.matMul(imageFeatures, textFeatures, false, true), logitScale);
      const logitsPerText = tf.transpose(logitsPerImage);
      return { imageFeatures, textFeatures, logitScale, logitsPerImage, logitsPerText };
    });
  }

  /**
   * Clamps `logit_scale` in place to [0, ln 100]: CLIP §2.5 clips the temperature so that
   * logits are never scaled by more than 100 (open_clip clamps after every optimizer step).
   */
  clampLogitScale(): void {
    const v = this.logitScale.variable;
    tf.tidy(() => v.assign(tf.clipByValue(v, 0, LOGIT_SCALE_MAX)));
  }
}
