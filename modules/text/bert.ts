/**
 * BERT (Devlin et al. 2019) as transformers' `BertModel`, with its exact state-dict names:
 *
 * ```
 * embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
 * encoder.layer.N.attention.self.{query, key, value}
 * encoder.layer.N.attention.output.{dense, LayerNorm}
 * encoder.layer.N.intermediate.dense
 * encoder.layer.N.output.{dense, LayerNorm}
 * pooler.dense
 * ```
 *
 * Post-LN blocks: `LN(x + dropout(attn(x)))`, then `LN(h + dropout(W₂·act(W₁·h)))`.
 * {@link RobertaModel} (roberta.ts) reuses everything but the position ids.
 */
import { Embedding, F, LayerNorm, Linear, Module, ModuleList } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';
import { applyActivation, type BertConfig } from './config.js';
import type { FromPretrainedOptions } from './pretrained.js';
import { additiveMask, initHfWeights, mergeHeads, prepareInputs, splitHeads, type HfTextEncoder, type TextEncoderOutput } from './common.js';

/** Word + position + token-type embeddings, summed, layer-normalised, dropped out. */
export class BertEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly tokenTypeEmbeddings: Embedding;
  readonly layerNorm: LayerNorm;

  constructor(readonly config: BertConfig) {
    super();
    const h = config.hiddenSize;
    this.wordEmbeddings = this.registerModule('word_embeddings', new Embedding(config.vocabSize, h, { paddingIdx: config.padTokenId < config.vocabSize ? config.padTokenId : null }));
    // RoBERTa's position table has a padding row too (transformers passes padding_idx).
    const posPad = config.modelType === 'roberta' ? config.padTokenId : null;
    this.positionEmbeddings = this.registerModule('position_embeddings', new Embedding(config.maxPositionEmbeddings, h, { paddingIdx: posPad }));
    this.tokenTypeEmbeddings = this.registerModule('token_type_embeddings', new Embedding(config.typeVocabSize, h));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm(h, { eps: config.layerNormEps }));
  }

  /** `ids`, `positions` and `types` are int32 `[B, L]`; returns `[B, L, hidden]`. */
  forward(ids: Tensor, positions: Tensor, types: Tensor): Tensor {
    return tf.tidy(() => {
      const sum = tf.addN([this.wordEmbeddings.forward(ids), this.tokenTypeEmbeddings.forward(types), this.positionEmbeddings.forward(positions)]);
      return F.dropout(this.layerNorm.forward(sum), this.config.hiddenDropoutProb, this.training);
    });
  }
}

/** Multi-head self-attention with separate query/key/value projections. */
export class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(readonly config: BertConfig) {
    super();
    const h = config.hiddenSize;
    this.query = this.registerModule('query', new Linear(h, h));
    this.key = this.registerModule('key', new Linear(h, h));
    this.value = this.registerModule('value', new Linear(h, h));
  }

  /** `x` `[B, L, H]`, `maskBias` `[B, 1, 1, L]` additive; returns the merged heads `[B, L, H]`. */
  forward(x: Tensor, maskBias: Tensor): Tensor {
    const heads = this.config.numAttentionHeads;
    return tf.tidy(() => {
      const q = splitHeads(this.query.forward(x), heads);
      const k = splitHeads(this.key.forward(x), heads);
      const v = splitHeads(this.value.forward(x), heads);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(this.config.hiddenSize / heads)), maskBias);
      const probs = F.dropout(tf.softmax(scores), this.config.attentionProbsDropoutProb, this.training);
      return mergeHeads(tf.matMul(probs, v));
    });
  }
}

/** `LayerNorm(input + dropout(dense(x)))`: BERT's residual output sublayer. */
export class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;

  constructor(
    readonly config: BertConfig,
    inFeatures: number,
  ) {
    super();
    this.dense = this.registerModule('dense', new Linear(inFeatures, config.hiddenSize));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm(config.hiddenSize, { eps: config.layerNormEps }));
  }

  forward(x: Tensor, input: Tensor): Tensor {
    return tf.tidy(() => this.layerNorm.forward(tf.add(F.dropout(this.dense.forward(x), this.config.hiddenDropoutProb, this.training), input)));
  }
}

/** `attention.self` + `attention.output`. */
export class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.hiddenSize));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    return tf.tidy(() => this.output.forward(this.self.forward(x, maskBias), x));
  }
}

/** `intermediate.dense` + activation. */
export class BertIntermediate extends Module {
  readonly dense: Linear;

  constructor(readonly config: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hiddenSize, config.intermediateSize));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => applyActivation(this.dense.forward(x), this.config.hiddenAct));
  }
}

/** One encoder block: attention, then the feed-forward sublayer. */
export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(config));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.intermediateSize));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    return tf.tidy(() => {
      const a = this.attention.forward(x, maskBias);
      return this.output.forward(this.intermediate.forward(a), a);
    });
  }
}

/** `encoder.layer.N`. */
export class BertEncoder extends Module {
  readonly layer: ModuleList<BertLayer>;

  constructor(config: BertConfig) {
    super();
    this.layer = this.registerModule('layer', new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new BertLayer(config))));
  }

  forward(x: Tensor, maskBias: Tensor): Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layer) h = l.forward(h, maskBias);
      return h;
    });
  }
}

/** `tanh(dense(h[:, 0]))`: the first token's state, as BERT's NSP head saw it. */
export class BertPooler extends Module {
  readonly dense: Linear;

  constructor(config: BertConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hiddenSize, config.hiddenSize));
  }

  forward(hidden: Tensor): Tensor {
    const [b, , h] = hidden.shape as [number, number, number];
    return tf.tidy(() => tf.tanh(this.dense.forward(tf.reshape(tf.slice(hidden, [0, 0, 0], [b, 1, h]), [b, h]))));
  }
}

/** Options of {@link BertModel}. */
export interface BertModelOptions {
  /** Build the pooler (default true, as transformers' `AutoModel`). */
  addPoolingLayer?: boolean;
}

/**
 * transformers' `BertModel`, trainable (dropout active in training mode). Build from a
 * config, or load with `BertModel.fromPretrained` (pretrained.ts).
 *
 * @example
 * const out = model.forward(inputIds, attentionMask);   // lastHiddenState [B, L, 768], poolerOutput [B, 768]
 */
export class BertModel extends Module implements HfTextEncoder {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | null;

  constructor(
    readonly config: BertConfig,
    options: BertModelOptions = {},
  ) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config));
    this.encoder = this.registerModule('encoder', new BertEncoder(config));
    this.pooler = (options.addPoolingLayer ?? true) ? this.registerModule('pooler', new BertPooler(config)) : null;
    initHfWeights(this, config.initializerRange);
  }

  get hiddenSize(): number {
    return this.config.hiddenSize;
  }

  /**
   * Loads a BERT checkpoint: a local directory with `config.json` and `model.safetensors`
   * or `pytorch_model.bin`, or a hub id fetched into the cache (see `loadHfTextEncoder`).
   * @throws MisconfigurationError when `config.json`'s `model_type` is not "bert".
   */
  static async fromPretrained(idOrDir: string, options: FromPretrainedOptions = {}): Promise<BertModel> {
    // Imported on call: pretrained.ts builds every encoder class, so a static import would be circular.
    const { loadHfTextEncoder } = await import('./pretrained.js');
    return (await loadHfTextEncoder(idOrDir, options, 'bert')).model as BertModel;
  }

  /** The longest sequence the position table covers. */
  get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings;
  }

  /** Position ids `[B, L]`: 0..L-1 for BERT (absolute positions from the start). */
  protected positionIds(ids: Tensor): Tensor {
    const [b, l] = ids.shape as [number, number];
    return tf.tidy(() => tf.tile(tf.reshape(tf.range(0, l, 1, 'int32'), [1, l]), [b, 1]));
  }

  /**
   * @param inputIds `[B, L]` token ids (int32).
   * @param attentionMask `[B, L]`, 1 for tokens and 0 for padding (default all ones).
   * @param tokenTypeIds `[B, L]` segment ids (default zeros).
   */
  forward(inputIds: Tensor, attentionMask?: Tensor | null, tokenTypeIds?: Tensor | null): TextEncoderOutput {
    const l = inputIds.shape[1]!;
    if (l > this.maxSequenceLength) {
      throw new Error(`${this.constructor.name}: sequence length ${l} exceeds the ${this.maxSequenceLength} positions of max_position_embeddings; truncate in the tokenizer`);
    }
    const lastHiddenState = tf.tidy(() => {
      const { ids, mask, types } = prepareInputs(this.constructor.name, inputIds, attentionMask, tokenTypeIds);
      const h = this.embeddings.forward(ids, this.positionIds(ids), types);
      return this.encoder.forward(h, additiveMask(mask));
    });
    if (!this.pooler) return { lastHiddenState };
    return { lastHiddenState, poolerOutput: this.pooler.forward(lastHiddenState) };
  }
}
