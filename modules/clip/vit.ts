/**
 * OpenAI CLIP's `VisionTransformer` (Dosovitskiy et al. 2021, with CLIP's extra `ln_pre`),
 * with OpenAI's state-dict names and layouts: `conv1.weight [width, 3, p, p]` (no bias),
 * `class_embedding [width]`, `positional_embedding [grid² + 1, width]`, `ln_pre`,
 * `transformer.resblocks.N…`, `ln_post`, `proj [width, embed]` (used as `x @ proj`).
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Conv2d, init, LayerNorm, Module, type Parameter } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { applyLayerNorm, Transformer, type TransformerOptions } from './transformer.js';
import { PatchDropout } from './patchDropout.js';

/** Shape of a {@link VisionTransformer}. */
export interface VisionTransformerOptions extends TransformerOptions {
  /** Square input resolution; a multiple of `patchSize`. */
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  /** Width of the joint embedding (`proj`'s second dimension). */
  outputDim: number;
}

/**
 * The ViT image tower. Input images are **NHWC** `[B, imageSize, imageSize, 3]` (lightclip's
 * image layout); the patch grid is flattened row-major, as OpenAI's NCHW `flatten(2)`, so
 * OpenAI's positional embeddings line up unchanged. Output `[B, outputDim]`, unnormalised.
 *
 * Initialisation as OpenAI: with `scale = width^-0.5`, `class_embedding`,
 * `positional_embedding` and `proj` are `scale·N(0, 1)`; the other layers keep PyTorch's
 * defaults (OpenAI's `initialize_parameters` re-initialises only the text transformer).
 */
export class VisionTransformer extends Module {
  readonly conv1: Conv2d;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly lnPre: LayerNorm;
  readonly transformer: Transformer;
  readonly lnPost: LayerNorm;
  readonly proj: Parameter;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly width: number;
  readonly grid: number;
  /** open_clip's `--force_patch_dropout` (training only; default off). */
  patchDropout = new PatchDropout(0);

  /** @throws MisconfigurationError when `imageSize` is not a multiple of `patchSize`, or heads do not divide `width`. */
  constructor(options: VisionTransformerOptions) {
    super();
    const { imageSize, patchSize, width, layers, heads, outputDim } = options;
    if (!(Number.isInteger(patchSize) && patchSize > 0 && Number.isInteger(imageSize) && imageSize > 0 && imageSize % patchSize === 0)) {
      throw new MisconfigurationError(
        `\`imageSize\` (${showValue(imageSize)}) must be a positive multiple of \`patchSize\` (${showValue(patchSize)}) for a ViT`,
      );
    }
    this.imageSize = imageSize;
    this.patchSize = patchSize;
    this.width = width;
    this.grid = imageSize / patchSize;
    const scale = width ** -0.5;
    this.conv1 = this.registerModule('conv1', new Conv2d(3, width, patchSize, { stride: patchSize, bias: false }));
    this.classEmbedding = this.registerParameter('class_embedding', init.normal([width], { std: scale }));
    this.positionalEmbedding = this.registerParameter('positional_embedding', init.normal([this.grid * this.grid + 1, width], { std: scale }));
    this.lnPre = this.registerModule('ln_pre', new LayerNorm(width));
    this.transformer = this.registerModule('transformer', new Transformer(width, layers, heads, options));
    this.lnPost = this.registerModule('ln_post', new LayerNorm(width));
    this.proj = this.registerParameter('proj', init.normal([width, outputDim], { std: scale }));
  }

  /** `images` NHWC `[B, imageSize, imageSize, 3]` → features `[B, outputDim]`. */
  forward(images: Tensor): Tensor {
    const s = this.imageSize;
    if (images.rank !== 4 || images.shape[1] !== s || images.shape[2] !== s || images.shape[3] !== 3) {
      throw new Error(`VisionTransformer expects NHWC images [B, ${s}, ${s}, 3], got [${images.shape.join(', ')}]`);
    }
    const b = images.shape[0]!;
    const w = this.width;
    return tf.tidy(() => {
      const patches = tf.reshape(this.conv1.forward(images), [b, this.grid * this.grid, w]);
      const cls = tf.broadcastTo(tf.reshape(this.classEmbedding.variable, [1, 1, w]), [b, 1, w]);
      const tokens = this.patchDropout.apply(tf.add(tf.concat([cls, patches], 1), this.positionalEmbedding.variable), this.training);
      const x = this.transformer.forward(applyLayerNorm(this.lnPre, tokens));
      // Only the class token is read out, so ln_post runs on [B, width], not [B, L, width].
      const pooled = applyLayerNorm(this.lnPost, tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, w]), [b, w]));
      return tf.matMul(pooled, this.proj.variable);
    });
  }
}
