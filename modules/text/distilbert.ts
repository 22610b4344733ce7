/**
 * DistilBERT (Sanh et al. 2019) as transformers' `DistilBertModel`, with its state-dict names:
 *
 * ```
 * embeddings.{word_embeddings, position_embeddings, LayerNorm}
 * transformer.layer.N.attention.{q_lin, k_lin, v_lin, out_lin}
 * transformer.layer.N.sa_layer_norm
 * transformer.layer.N.ffn.{lin1, lin2}
 * transformer.layer.N.output_layer_norm
 * ```
 *
 * No token types and no pooler; LayerNorm eps is 1e-12 throughout (hard-coded in transformers).
 */
import { Embedding, F, LayerNorm, Linear, Module, ModuleList } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { applyActivation, type DistilBertConfig } from './config.js';
import type { FromPretrainedOptions } from './pretrained.js';
import { additiveMask, initHfWeights, mergeHeads, prepareInputs, splitHeads, type HfTextEncoder, type TextEncoderOutput } from './common.js';

const LN_EPS = 1e-12;

/**
 * transformers' `create_sinusoidal_embeddings`: even columns sin(pos / 10000^(2⌊j/2⌋/dim)),
 * odd columns cos of the same angle.
 */
export function sinusoidalEmbeddings(positions: number, dim: number): Tensor {
  const out = new Float32Array(positions * dim);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < dim; j++) {
      const angle = p / Math.pow(10000, (2 * Math.floor(j / 2)) / dim);
      out[p * dim + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return tf.tensor2d(out, [positions, dim]);
}

/** Word + position embeddings, layer-normalised, dropped out. */
export class DistilBertEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly layerNorm: LayerNorm;

  constructor(readonly config: DistilBertConfig) {
    super();
    this.wordEmbeddings = this.registerModule('word_embeddings', new Embedding(config.vocabSize, config.dim, { paddingIdx: config.padTokenId < config.vocabSize ? config.padTokenId : null }));
    this.positionEmbeddings = this.registerModule('position_embeddings', new Embedding(config.maxPositionEmbeddings, config.dim));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm(config.dim, { eps: LN_EPS }));
  }

  forward(ids: Tensor): Tensor {
    const [b, l] = ids.shape as [number, number];
    return tf.tidy(() => {
      const pos = tf.tile(tf.reshape(tf.range(0, l, 1, 'int32'), [1, l]), [b, 1]);
      const sum = tf.add(this.wordEmbeddings.forward(ids), this.positionEmbeddings.forward(pos));
      return F.dropout(this.layerNorm.forward(sum), this.config.dropout, this.training);
    });
  }
}

/** Multi-head self-attention with `q_lin`, `k_lin`, `v_lin`, `out_lin`. */
export class MultiHeadSelfAttention extends Module {
  readonly qLin: Linear;
  readonly kLin: Linear;
  readonly vLin: Linear;
  readonly outLin: Linear;

  constructor(readonly config: DistilBertConfig) {
    super();
    const d = config.dim;
    this.qLin = this.registerModule('q_lin', new Linear(d, d));
    this.kLin = this.registerModule('k_lin', new Linear(d, d));
    this.vLin = this.registerModule('v_lin', new Linear(d, d));
    this.outLin = this.registerModule('out_lin', new Linear(d, d));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    const heads = this.config.nHeads;
    return tf.tidy(() => {
      // transformers scales q before the product; the same value as scaling the scores.
      const q = tf.mul(splitHeads(this.qLin.forward(x), heads), 1 / Math.sqrt(this.config.dim / heads));
      const k = splitHeads(this.kLin.forward(x), heads);
      const v = splitHeads(this.vLin.forward(x), heads);
      const scores = tf.add(tf.matMul(q, k, false, true), maskBias);
      const probs = F.dropout(tf.softmax(scores), this.config.attentionDropout, this.training);
      return this.outLin.forward(mergeHeads(tf.matMul(probs, v)));
    });
  }
}

/** `lin2(dropout?(act(lin1(x))))`: the feed-forward sublayer (dropout after lin2). */
export class FFN extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;

  constructor(readonly config: DistilBertConfig) {
    super();
    this.lin1 = this.registerModule('lin1', new Linear(config.dim, config.hiddenDim));
    this.lin2 = this.registerModule('lin2', new Linear(config.hiddenDim, config.dim));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => F.dropout(this.lin2.forward(applyActivation(this.lin1.forward(x), this.config.activation)), this.config.dropout, this.training));
  }
}

/** One post-LN block: `sa_layer_norm(attn(x) + x)`, then `output_layer_norm(ffn(h) + h)`. */
export class TransformerBlock extends Module {
  readonly attention: MultiHeadSelfAttention;
  readonly saLayerNorm: LayerNorm;
  readonly ffn: FFN;
  readonly outputLayerNorm: LayerNorm;

  constructor(config: DistilBertConfig) {
    super();
    this.attention = this.registerModule('attention', new MultiHeadSelfAttention(config));
    this.saLayerNorm = this.registerModule('sa_layer_norm', new LayerNorm(config.dim, { eps: LN_EPS }));
    this.ffn = this.registerModule('ffn', new FFN(config));
    this.outputLayerNorm = this.registerModule('output_layer_norm', new LayerNorm(config.dim, { eps: LN_EPS }));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    return tf.tidy(() => {
      const h = this.saLayerNorm.forward(tf.add(this.attention.forward(x, maskBias), x));
      return this.outputLayerNorm.forward(tf.add(this.ffn.forward(h), h));
    });
  }
}

/** `transformer.layer.N`. */
export class DistilBertTransformer extends Module {
  readonly layer: ModuleList<TransformerBlock>;

  constructor(config: DistilBertConfig) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: config.nLayers }, () => new TransformerBlock(config))));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layer) h = l.forward(h, maskBias);
      return h;
    });
  }
}

/**
 * transformers' `DistilBertModel`, trainable. `forward` returns `lastHiddenState` only
 * (DistilBERT has no pooler); mean-pool it over the mask for a sentence embedding.
 */
export class DistilBertModel extends Module implements HfTextEncoder {
  readonly embeddings: DistilBertEmbeddings;
  readonly transformer: DistilBertTransformer;

  constructor(readonly config: DistilBertConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new DistilBertEmbeddings(config));
    this.transformer = this.registerModule('transformer', new DistilBertTransformer(config));
    initHfWeights(this, config.initializerRange);
    if (config.sinusoidalPosEmbds) {
      const table = this.embeddings.positionEmbeddings.weight;
      assignSinusoidal(table.variable, config.maxPositionEmbeddings, config.dim);
      table.requiresGrad = false;
    }
  }

  get hiddenSize(): number {
    return this.config.dim;
  }

  get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings;
  }

  /**
   * Loads a DistilBERT checkpoint (local directory or hub id; see `loadHfTextEncoder`).
   * @throws MisconfigurationError when `config.json`'s `model_type` is not "distilbert".
   */
  static async fromPretrained(idOrDir: string, options: FromPretrainedOptions = {}): Promise<DistilBertModel> {
    const { loadHfTextEncoder } = await import('./pretrained.js');
    return (await loadHfTextEncoder(idOrDir, options, 'distilbert')).model as DistilBertModel;
  }

  /**
   * @param inputIds `[B, L]` token ids (int32).
   * @param attentionMask `[B, L]`, 1 for tokens and 0 for padding (default all ones).
   * @param tokenTypeIds ignored: DistilBERT has no segment embeddings (accepted so all encoders share a signature).
   */
  forward(inputIds: Tensor, attentionMask?: Tensor | null, tokenTypeIds?: Tensor | null): TextEncoderOutput {
    void tokenTypeIds;
    const l = inputIds.shape[1]!;
    if (l > this.maxSequenceLength) {
      throw new Error(`DistilBertModel: sequence length ${l} exceeds max_position_embeddings ${this.maxSequenceLength}; truncate in the tokenizer`);
    }
    const lastHiddenState = tf.tidy(() => {
      const { ids, mask } = prepareInputs('DistilBertModel', inputIds, attentionMask);
      return this.transformer.forward(this.embeddings.forward(ids), additiveMask(mask));
    });
    return { lastHiddenState };
  }
}

function assignSinusoidal(v: tf.Variable, positions: number, dim: number): void {
  const t = sinusoidalEmbeddings(positions, dim);
  v.assign(t);
  t.dispose();
}
