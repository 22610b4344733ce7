/**
 * The Llip model: a ViT image tower that carries K learnable mixture tokens besides its
 * class and patch tokens, CLIP's text tower, and the text-conditioned cross-attention of
 * similarity.ts. Defaults where the paper leaves a choice (methods.md [A]): the K tokens
 * (`visual.mixture_tokens [K, width]`, truncated normal σ 0.02) are appended after the
 * positional embeddings, before `ln_pre`, and read out after `ln_post`; the cross-attention
 * has D/64 heads (at least 1) and temperature 1; the loss (in the wrapper) is SigLIP.
 * The model computes features and similarities, never a loss.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Conv2d, Embedding, F, init, LayerNorm, Module, type Parameter } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { isResNetConfig, resolveModelConfig, type ClipConfig } from '../clip/config.js';
import { LOGIT_SCALE_MAX } from '../clip/model.js';
import { encodeTextTower, initTextTower, type TextTowerParts } from '../clip/textTransformer.js';
import { applyLayerNorm, Transformer } from '../clip/transformer.js';
import { SIGLIP_LOGIT_BIAS_INIT, SIGLIP_LOGIT_SCALE_INIT } from '../losses/siglip.js';
import { PatchDropout } from '../clip/patchDropout.js';
import { conditionedEmbeddings, LlipCrossAttention, llipSimilarity } from './similarity.js';

/** The options beyond the tower config. */
export interface LlipOptions {
  /** K, the number of mixture tokens (Llip's ViT-B/16 release: 32; ViT-G/14: 64). */
  numMixtureTokens: number;
  /** Cross-attention heads (default max(1, D/64)). */
  heads?: number;
  /** Softmax temperature of the cross-attention (default 1). */
  temperature?: number;
  /** open_clip's `force_patch_dropout`: fraction of patch tokens dropped in training (default 0). */
  patchDropout?: number;
  /** Input resolution instead of the config's (a multiple of the patch size). */
  imageSize?: number;
}

/** The ViT image tower with mixture tokens; `forward` returns their outputs `[B, K, width]` (after `ln_post`). */
export class LlipVisionTransformer extends Module {
  readonly conv1: Conv2d;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly mixtureTokens: Parameter;
  readonly lnPre: LayerNorm;
  readonly transformer: Transformer;
  readonly lnPost: LayerNorm;
  readonly patchDropout: PatchDropout;
  readonly grid: number;

  constructor(
    readonly imageSize: number,
    readonly patchSize: number,
    readonly width: number,
    layers: number,
    heads: number,
    readonly numMixtureTokens: number,
    options: { quickGelu?: boolean; patchDropout?: number } = {},
  ) {
    super();
    if (!(Number.isInteger(numMixtureTokens) && numMixtureTokens >= 1)) {
      throw new MisconfigurationError(`\`--num_mixture_tokens\` must be an integer ≥ 1, got ${showValue(numMixtureTokens)}.`);
    }
    if (!(imageSize % patchSize === 0)) throw new MisconfigurationError(`Llip ViT: image size ${imageSize} is not a multiple of the patch size ${patchSize}.`);
    this.grid = imageSize / patchSize;
    const scale = width ** -0.5;
    this.conv1 = this.registerModule('conv1', new Conv2d(3, width, patchSize, { stride: patchSize, bias: false }));
    this.classEmbedding = this.registerParameter('class_embedding', init.normal([width], { std: scale }));
    this.positionalEmbedding = this.registerParameter('positional_embedding', init.normal([this.grid * this.grid + 1, width], { std: scale }));
    this.mixtureTokens = this.registerParameter('mixture_tokens', init.truncNormal([numMixtureTokens, width], { std: 0.02 }));
    this.lnPre = this.registerModule('ln_pre', new LayerNorm(width));
    this.transformer = this.registerModule('transformer', new Transformer(width, layers, heads, { quickGelu: options.quickGelu }));
    this.lnPost = this.registerModule('ln_post', new LayerNorm(width));
    this.patchDropout = new PatchDropout(options.patchDropout ?? 0);
  }

  /** NHWC images `[B, S, S, 3]` → mixture-token outputs `[B, K, width]`. */
  forward(images: Tensor): Tensor {
    const s = this.imageSize;
    if (images.rank !== 4 || images.shape[1] !== s || images.shape[2] !== s || images.shape[3] !== 3) {
      throw new MisconfigurationError(`Llip ViT expects NHWC images [B, ${s}, ${s}, 3], got [${images.shape.join(', ')}]`);
    }
    const b = images.shape[0]!;
    const w = this.width;
    const k = this.numMixtureTokens;
    return tf.tidy(() => {
      const patches = tf.reshape(this.conv1.forward(images), [b, this.grid * this.grid, w]);
      const cls = tf.broadcastTo(tf.reshape(this.classEmbedding.variable, [1, 1, w]), [b, 1, w]);
      let tokens = tf.add(tf.concat([cls, patches], 1), this.positionalEmbedding.variable);
      tokens = this.patchDropout.apply(tokens, this.training);
      const mix = tf.broadcastTo(tf.reshape(this.mixtureTokens.variable, [1, k, w]), [b, k, w]);
      const x = this.transformer.forward(applyLayerNorm(this.lnPre, tf.concat([tokens, mix], 1)));
      const l = x.shape[1]!;
      return applyLayerNorm(this.lnPost, tf.slice(x, [0, l - k, 0], [b, k, w]));
    });
  }
}

/**
 * Llip over a CLIP tower config (ViT image tower only). State-dict names: `visual.*` as
 * OpenAI's ViT without `visual.proj`, plus `visual.mixture_tokens`; the text tower at the
 * root as OpenAI's; `mixture_attn.{q,k,v,out}_proj.{weight,bias}`; `logit_scale`,
 * `logit_bias`.
 */
export class LlipModel extends Module implements TextTowerParts {
  readonly visual: LlipVisionTransformer;
  readonly transformer: Transformer;
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Parameter;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
  readonly mixtureAttn: LlipCrossAttention;
  readonly logitScale: Parameter;
  readonly logitBias: Parameter;
  readonly config: ClipConfig;

  constructor(config: ClipConfig | string, options: LlipOptions) {
    super();
    const cfg = typeof config === 'string' ? resolveModelConfig(config) : structuredClone(config);
    if (isResNetConfig(cfg)) throw new MisconfigurationError('Llip needs a ViT image tower (`--model_name ViT-B/16`...), not a ResNet: the mixture tokens are transformer tokens.');
    if (options.imageSize !== undefined) cfg.vision.imageSize = options.imageSize;
    this.config = cfg;
    const { embedDim, vision, text, quickGelu } = cfg;
    this.visual = this.registerModule(
      'visual',
      new LlipVisionTransformer(vision.imageSize, vision.patchSize!, vision.width, vision.layers as number, vision.heads, options.numMixtureTokens, { quickGelu, patchDropout: options.patchDropout }),
    );
    this.transformer = this.registerModule('transformer', new Transformer(text.width, text.layers, text.heads, { quickGelu }));
    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(text.vocabSize, text.width));
    this.positionalEmbedding = this.registerParameter('positional_embedding', tf.zeros([text.contextLength, text.width]));
    this.lnFinal = this.registerModule('ln_final', new LayerNorm(text.width));
    this.textProjection = this.registerParameter('text_projection', tf.zeros([text.width, embedDim]));
    const heads = options.heads ?? Math.max(1, Math.floor(embedDim / 64));
    this.mixtureAttn = this.registerModule('mixture_attn', new LlipCrossAttention({ embedDim, tokenDim: vision.width, heads, temperature: options.temperature }));
    this.logitScale = this.registerParameter('logit_scale', tf.scalar(SIGLIP_LOGIT_SCALE_INIT));
    this.logitBias = this.registerParameter('logit_bias', tf.scalar(SIGLIP_LOGIT_BIAS_INIT));
    initTextTower(this);
  }

  get imageSize(): number {
    return this.config.vision.imageSize;
  }

  get contextLength(): number {
    return this.config.text.contextLength;
  }

  get numMixtureTokens(): number {
    return this.visual.numMixtureTokens;
  }

  /** Images → mixture-token outputs `[B, K, width]` (Llip has no caption-free image embedding). */
  encodeImage(images: Tensor): Tensor {
    return this.visual.forward(images);
  }

  /** Token ids `[T, L]` → unnormalised text features `[T, D]` at the EOT token. */
  encodeText(tokens: Tensor): Tensor {
    return encodeTextTower(this, tokens);
  }

  /** s_ij = cos(z_{i|j}, t_j) for mixture outputs `[Ni, K, W]` and normalised texts `[Nt, D]`, without materialising z. */
  similarity(mixture: Tensor, texts: Tensor): Tensor {
    return llipSimilarity(this.mixtureAttn, mixture, texts);
  }

  /** z_{i|j} `[Ni, Nt, D]` (unnormalised): the caption-conditioned image embeddings. */
  conditionedImageEmbeddings(mixture: Tensor, texts: Tensor): Tensor {
    return conditionedEmbeddings(this.mixtureAttn, mixture, texts);
  }

  /** Zero-shot scores `[B, C]`: every class embedding (columns of `classifier [D, C]`, normalised) conditions every image. */
  zeroShotLogits(images: Tensor, classifier: Tensor): Tensor {
    return tf.tidy(() => this.similarity(this.encodeImage(images), tf.transpose(classifier)));
  }

  /** Normalised text features `[T, D]`. */
  encodeTextNormalized(tokens: Tensor): Tensor {
    return tf.tidy(() => F.normalize(this.encodeText(tokens)));
  }

  clampLogitScale(): void {
    const v = this.logitScale.variable;
    tf.tidy(() => v.assign(tf.clipByValue(v, 0, LOGIT_SCALE_MAX)));
  }
}
