/**
 * OpenAI CLIP's text tower: `token_embedding`, `positional_embedding [context, width]`, a
 * causally masked {@link Transformer}, `ln_final` and `text_projection [width, embed]`; the
 * text feature is read at the EOT token, found as the argmax of the token ids (`<|endoftext|>`
 * = 49407 is the largest id in CLIP's vocabulary).
 *
 * In OpenAI's `CLIP` these parts sit at the model's root (`token_embedding.weight`, not
 * `text.token_embedding.weight`), so the forward pass and initialisation are written against
 * {@link TextTowerParts}, which both `CLIP` and the standalone {@link TextTransformer} implement.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { Embedding, F, init, LayerNorm, Module, type Parameter } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { applyLayerNorm, Transformer } from './transformer.js';

/** The modules and parameters of a CLIP text tower, wherever they are registered. */
export interface TextTowerParts {
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Parameter;
  readonly transformer: Transformer;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
}

/** Per-call options of text encoding. */
export interface EncodeTextOptions {
  /**
   * Drop the padding columns after the last EOT of the batch before running the
   * transformer (default true). Under the causal mask a token never sees later positions,
   * so the EOT features are the same as with the full context (up to float rounding), but a
   * typical caption of ~15 tokens costs ~5× less than 77. It reads the EOT positions back to
   * the host once per call.
   */
  trimPadding?: boolean;
}

/**
 * Re-initialises a text tower as OpenAI's `CLIP.initialize_parameters`: token embedding
 * N(0, 0.02²), positional embedding N(0, 0.01²); in every block `in_proj_weight` N(0, w^-1),
 * `out_proj.weight` and `mlp.c_proj.weight` N(0, (w^-0.5·(2L)^-0.5)²), `mlp.c_fc.weight`
 * N(0, 1/(2w)); `text_projection` N(0, w^-1), with w the width and L the depth. Biases keep
 * their defaults.
 */
export function initTextTower(parts: TextTowerParts): void {
  const { width, layers } = parts.transformer;
  const normal = (std: number) => (shape: number[]): Tensor => init.normal(shape, { std });
  init.assignInit(parts.tokenEmbedding.weight, normal(0.02));
  init.assignInit(parts.positionalEmbedding, normal(0.01));
  const projStd = width ** -0.5 * (2 * layers) ** -0.5;
  const attnStd = width ** -0.5;
  const fcStd = (2 * width) ** -0.5;
  for (const block of parts.transformer.resblocks) {
    init.assignInit(block.attn.inProjWeight, normal(attnStd));
    init.assignInit(block.attn.outProj.weight, normal(projStd));
    init.assignInit(block.cFc.weight, normal(fcStd));
    init.assignInit(block.cProj.weight, normal(projStd));
  }
  init.assignInit(parts.textProjection, normal(width ** -0.5));
}

/**
 * Encodes token ids `[B, L]` (L ≤ context length, integer ids, padded with 0 after EOT) to
 * unnormalised text features `[B, embed]`, as OpenAI's `CLIP.encode_text`.
 */
export function encodeTextTower(parts: TextTowerParts, tokens: Tensor, options: EncodeTextOptions = {}): Tensor {
  const context = parts.positionalEmbedding.shape[0]!;
  const width = parts.transformer.width;
  if (tokens.rank !== 2 || tokens.shape[1]! < 1 || tokens.shape[1]! > context) {
    throw new Error(`encodeText expects token ids [B, L] with 1 ≤ L ≤ ${context} (the context length), got [${tokens.shape.join(', ')}]`);
  }
  const [b, l] = tokens.shape as [number, number];
  return tf.tidy(() => {
    const ids = tokens.dtype === 'int32' ? tokens : tf.cast(tokens, 'int32');
    const eot = tf.argMax(ids, -1); // [B]
    let len = l;
    if (options.trimPadding ?? true) len = Math.min(l, tf.max(eot).dataSync()[0]! + 1);
    const used = len < l ? tf.slice(ids, [0, 0], [b, len]) : ids;
    const pos = len < context ? tf.slice(parts.positionalEmbedding.variable, [0, 0], [len, width]) : parts.positionalEmbedding.variable;
    const x = tf.add(F.embedding(parts.tokenEmbedding.weight.variable, used), pos);
    const h = parts.transformer.forward(x, F.causalMask(len));
    // Pick the EOT rows first: ln_final is per token, so normalising B rows instead of B·len
    // gives the same values. A one-hot [B, 1, len]·[B, len, width] product rather than a
    // gather, whose gradient is slow on the cpu backend (see F.embedding): B·len·width
    // multiply-adds either way.
    const pick = tf.expandDims(tf.oneHot(eot, len, 1, 0, 'float32'), 1);
    const pooled = tf.reshape(tf.matMul(pick, h), [b, width]);
    return tf.matMul(applyLayerNorm(parts.lnFinal, pooled), parts.textProjection.variable);
  });
}

/** Shape of a {@link TextTransformer}. */
export interface TextTransformerOptions {
  contextLength: number;
  vocabSize: number;
  width: number;
  heads: number;
  layers: number;
  /** Width of the joint embedding (`text_projection`'s second dimension). */
  outputDim: number;
  /** QuickGELU (true, OpenAI) or exact GELU in the MLPs. Default true. */
  quickGelu?: boolean;
}

/**
 * A standalone CLIP text tower with OpenAI's names at its root (`token_embedding.weight`,
 * `positional_embedding`, `transformer.resblocks.N…`, `ln_final`, `text_projection`), so a
 * CLIP state dict's text keys load into it unchanged. Initialised as {@link initTextTower}.
 */
export class TextTransformer extends Module implements TextTowerParts {
  readonly transformer: Transformer;
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Parameter;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;

  /** @throws MisconfigurationError for invalid sizes or `width` not divisible by `heads`. */
  constructor(options: TextTransformerOptions) {
    super();
    const { contextLength, vocabSize, width, heads, layers, outputDim } = options;
    if (!(Number.isInteger(contextLength) && contextLength > 0)) {
      throw new MisconfigurationError(`\`contextLength\` must be a positive integer, got ${showValue(contextLength)}`);
    }
    this.transformer = this.registerModule('transformer', new Transformer(width, layers, heads, { quickGelu: options.quickGelu ?? true }));
    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(vocabSize, width));
    this.positionalEmbedding = this.registerParameter('positional_embedding', tf.zeros([contextLength, width]));
    this.lnFinal = this.registerModule('ln_final', new LayerNorm(width));
    this.textProjection = this.registerParameter('text_projection', tf.zeros([width, outputDim]));
    initTextTower(this);
  }

  /** Token ids `[B, L]` → unnormalised features `[B, outputDim]`. */
  forward(tokens: Tensor, options: EncodeTextOptions = {}): Tensor {
    return encodeTextTower(this, tokens, options);
  }
}
