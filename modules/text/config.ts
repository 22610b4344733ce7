/**
 * Hugging Face `config.json` of the text encoders lightclip implements, parsed into camelCase
 * configs. Defaults are transformers' (`BertConfig`, `RobertaConfig`, `DistilBertConfig`), so
 * a config that omits a key means what it means to transformers. Unknown keys are ignored
 * (HF configs carry many irrelevant ones: `architectures`, `transformers_version`, ...).
 */
import { readFileSync } from 'node:fs';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { F } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';

/** Activations of HF's `ACT2FN` that lightclip provides. */
export type HfActivation = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'quick_gelu' | 'relu' | 'silu' | 'swish' | 'tanh';

const ACTIVATIONS: readonly HfActivation[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'quick_gelu', 'relu', 'silu', 'swish', 'tanh'];

/** BERT and RoBERTa (same encoder; RoBERTa offsets positions past `padTokenId`). */
export interface BertConfig {
  modelType: 'bert' | 'roberta';
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: HfActivation;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  /** Std of the N(0, σ²) init of Linear and Embedding weights. */
  initializerRange: number;
}

/** DistilBERT. Its LayerNorm eps is fixed at 1e-12 by transformers. */
export interface DistilBertConfig {
  modelType: 'distilbert';
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  hiddenDim: number;
  activation: HfActivation;
  dropout: number;
  attentionDropout: number;
  maxPositionEmbeddings: number;
  padTokenId: number;
  initializerRange: number;
  /** Fixed sinusoidal position embeddings (frozen) instead of learned ones. */
  sinusoidalPosEmbds: boolean;
}

/** Any supported text-encoder config. */
export type HfTextConfig = BertConfig | DistilBertConfig;

/** `model_type` values each implementation accepts (XLM-R and CamemBERT are RoBERTa architecturally). */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, HfTextConfig['modelType']>> = {
  bert: 'bert',
  roberta: 'roberta',
  'xlm-roberta': 'roberta',
  camembert: 'roberta',
  distilbert: 'distilbert',
};

class Reader {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly file: string,
  ) {}

  private bad(key: string, expected: string): never {
    throw new MisconfigurationError(`${this.file}: \`${key}\` must be ${expected}, got ${showValue(this.json[key])}`);
  }

  int(key: string, fallback: number, min = 1): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) return this.bad(key, `an integer >= ${min}`);
    return v;
  }

  prob(key: string, fallback: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) return this.bad(key, 'a probability in [0, 1)');
    return v;
  }

  positive(key: string, fallback: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) return this.bad(key, 'a positive number');
    return v;
  }

  activation(key: string): HfActivation {
    const v = this.json[key] ?? 'gelu';
    if (typeof v !== 'string' || !(ACTIVATIONS as readonly string[]).includes(v)) return this.bad(key, `one of ${ACTIVATIONS.join(', ')}`);
    return v as HfActivation;
  }
}

/**
 * Validates a parsed `config.json`.
 * @param file named in error messages.
 * @throws MisconfigurationError naming the file and key for an unsupported `model_type`,
 *   an out-of-range value, a hidden size not divisible by the heads, or a non-absolute
 *   `position_embedding_type`.
 */
export function parseHfTextConfig(json: unknown, file = 'config.json'): HfTextConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MisconfigurationError(`${file}: expected a JSON object, got ${showValue(json)}`);
  }
  const obj = json as Record<string, unknown>;
  const kind = typeof obj.model_type === 'string' ? SUPPORTED_MODEL_TYPES[obj.model_type] : undefined;
  if (!kind) {
    throw new MisconfigurationError(
      `${file}: \`model_type\` must be one of ${Object.keys(SUPPORTED_MODEL_TYPES).join(', ')}, got ${showValue(obj.model_type)}`,
    );
  }
  const r = new Reader(obj, file);
  if (kind === 'distilbert') {
    const cfg: DistilBertConfig = {
      modelType: 'distilbert',
      vocabSize: r.int('vocab_size', 30522),
      dim: r.int('dim', 768),
      nLayers: r.int('n_layers', 6),
      nHeads: r.int('n_heads', 12),
      hiddenDim: r.int('hidden_dim', 3072),
      activation: r.activation('activation'),
      dropout: r.prob('dropout', 0.1),
      attentionDropout: r.prob('attention_dropout', 0.1),
      maxPositionEmbeddings: r.int('max_position_embeddings', 512),
      padTokenId: r.int('pad_token_id', 0, 0),
      initializerRange: r.positive('initializer_range', 0.02),
      sinusoidalPosEmbds: obj.sinusoidal_pos_embds === true,
    };
    if (cfg.dim % cfg.nHeads !== 0) throw new MisconfigurationError(`${file}: \`dim\` (${cfg.dim}) must be divisible by \`n_heads\`, got ${cfg.nHeads}`);
    return cfg;
  }
  const pet = obj.position_embedding_type ?? 'absolute';
  if (pet !== 'absolute') {
    throw new MisconfigurationError(`${file}: \`position_embedding_type\` must be "absolute" (relative position embeddings are not implemented), got ${showValue(pet)}`);
  }
  const cfg: BertConfig = {
    modelType: kind,
    vocabSize: r.int('vocab_size', 30522),
    hiddenSize: r.int('hidden_size', 768),
    numHiddenLayers: r.int('num_hidden_layers', 12),
    numAttentionHeads: r.int('num_attention_heads', 12),
    intermediateSize: r.int('intermediate_size', 3072),
    hiddenAct: r.activation('hidden_act'),
    hiddenDropoutProb: r.prob('hidden_dropout_prob', 0.1),
    attentionProbsDropoutProb: r.prob('attention_probs_dropout_prob', 0.1),
    maxPositionEmbeddings: r.int('max_position_embeddings', 512),
    typeVocabSize: r.int('type_vocab_size', 2),
    layerNormEps: r.positive('layer_norm_eps', 1e-12),
    padTokenId: r.int('pad_token_id', kind === 'roberta' ? 1 : 0, 0),
    initializerRange: r.positive('initializer_range', 0.02),
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new MisconfigurationError(`${file}: \`hidden_size\` (${cfg.hiddenSize}) must be divisible by \`num_attention_heads\`, got ${cfg.numAttentionHeads}`);
  }
  if (kind === 'roberta' && cfg.maxPositionEmbeddings <= cfg.padTokenId + 1) {
    throw new MisconfigurationError(`${file}: \`max_position_embeddings\` must exceed \`pad_token_id\` + 1 (RoBERTa positions start after the padding index), got ${cfg.maxPositionEmbeddings}`);
  }
  return cfg;
}

/**
 * Reads and validates a `config.json` file.
 * @throws MisconfigurationError for unreadable JSON or invalid values (see {@link parseHfTextConfig}).
 */
export function readHfTextConfig(file: string): HfTextConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new MisconfigurationError(`${file}: not readable JSON (${(err as Error).message})`);
  }
  return parseHfTextConfig(json, file);
}

/** Applies an HF activation by name (exact erf GELU for 'gelu', the tanh form for 'gelu_new' and its aliases). */
export function applyActivation(x: Tensor, act: HfActivation): Tensor {
  switch (act) {
    case 'gelu':
      return F.gelu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return F.gelu(x, 'tanh');
    case 'quick_gelu':
      return F.quickGelu(x);
    case 'relu':
      return tf.relu(x);
    case 'silu':
    case 'swish':
      return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    case 'tanh':
      return tf.tanh(x);
  }
}
