/**
 * Hugging Face text encoders (BERT, RoBERTa/DeCLUTR, DistilBERT) with transformers'
 * state-dict names, their `config.json` parsing, hub/cache resolution and tokenizers.
 */
export {
  parseHfTextConfig,
  readHfTextConfig,
  applyActivation,
  SUPPORTED_MODEL_TYPES,
  type BertConfig,
  type DistilBertConfig,
  type HfTextConfig,
  type HfActivation,
} from './config.js';
export { MASK_VALUE, additiveMask, initHfWeights, type HfTextEncoder, type TextEncoderOutput } from './common.js';
export {
  BertModel,
  BertEmbeddings,
  BertSelfAttention,
  BertAttention,
  BertResidualOutput,
  BertIntermediate,
  BertLayer,
  BertEncoder,
  BertPooler,
  type BertModelOptions,
} from './bert.js';
export { RobertaModel, robertaPositionIds } from './roberta.js';
export {
  DistilBertModel,
  DistilBertEmbeddings,
  DistilBertTransformer,
  MultiHeadSelfAttention,
  FFN,
  TransformerBlock,
  sinusoidalEmbeddings,
} from './distilbert.js';
export {
  loadHfTextEncoder,
  loadHfStateDict,
  normaliseHfKeys,
  MODEL_FILES,
  type FromPretrainedOptions,
  type PretrainedEncoder,
  type PretrainedLoadReport,
} from './pretrained.js';
export {
  resolveFiles,
  defaultHubCacheDir,
  hubSnapshotDir,
  shardFiles,
  HubDownloadError,
  type FetchLike,
  type HubFileSpec,
  type HubOptions,
  type ResolvedFiles,
} from './hub.js';
export { HfTokenizer, toTokenTensors, type HfTokenizeOptions, type HfTokenizedBatch, type HfTokenizerOptions } from './hfTokenizer.js';
