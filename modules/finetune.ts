/**
 * The fine-tuning pair of train-CLIP's `train_finetune.py`: a torchvision ResNet image
 * tower and a Hugging Face text encoder with its tokenizer. Built here once for
 * `train.ts` (training) and `eval.ts` (evaluating a fine-tuned checkpoint, whose hparams
 * name the same encoders).
 */
import { tf } from '../core/tf.js';
import { MisconfigurationError } from '../core/errors.js';
import { HfTokenizer } from './text/hfTokenizer.js';
import { loadHfTextEncoder } from './text/pretrained.js';
import type { HfTextEncoder } from './text/common.js';
import { ResNet, resnet18, resnet34, resnet50, resnet101, resnet152 } from './vision/resnet.js';
import { loadTorchvisionResnet } from './weights/torchvisionResnet.js';
import { readWeightsAsTensors } from './weights/readWeights.js';
import { DualEncoder } from './wrappers/customClipWrapper.js';

/** Image encoders of `--image_encoder` (torchvision's ResNets, classifier head removed). */
export const RESNETS = { resnet18, resnet34, resnet50, resnet101, resnet152 } as const;

/** A ResNet of `--image_encoder`, with torchvision weights when `weights` is given. */
export async function makeImageEncoder(name: string, weights?: string): Promise<ResNet> {
  const make = RESNETS[name as keyof typeof RESNETS];
  if (!make) throw new MisconfigurationError(`\`--image_encoder\` must be one of ${Object.keys(RESNETS).join(', ')}, got ${JSON.stringify(name)}.`);
  const net = make({ numClasses: 0 });
  if (weights) {
    const sd = await readWeightsAsTensors(weights);
    try {
      loadTorchvisionResnet(net, sd);
    } finally {
      tf.dispose(Object.values(sd));
    }
  }
  return net;
}

/** Longest text the encoder's position table holds (BERT: max_position_embeddings; RoBERTa: minus the padding offset). */
export function maxTextLength(text: HfTextEncoder): number {
  const n = (text as HfTextEncoder & { maxSequenceLength?: number }).maxSequenceLength;
  return typeof n === 'number' && n > 0 ? n : text.config.maxPositionEmbeddings;
}

/**
 * The text encoder and its tokenizer, truncating to `min(contextLength, the model's
 * positions)`: a BERT with 64 positions cannot read 77 tokens (Hugging Face's tokenizers
 * truncate to `model_max_length` for the same reason).
 */
export async function loadTextTower(
  textEncoder: string,
  contextLength: number,
  log: ((line: string) => void) | null = console.log,
): Promise<{ text: HfTextEncoder; tokenizer: HfTokenizer; contextLength: number }> {
  const text = (await loadHfTextEncoder(textEncoder)).model;
  const limit = maxTextLength(text);
  const length = Math.min(contextLength, limit);
  if (length < contextLength) log?.(`lightclip: --context_length ${contextLength} exceeds the ${limit} positions of ${textEncoder}; texts are truncated to ${length} tokens.`);
  const tokenizer = await HfTokenizer.fromPretrained(textEncoder, { contextLength: length });
  return { text, tokenizer, contextLength: length };
}

/** The options a fine-tuned checkpoint's hparams hold (train.ts's flag names). */
export interface FinetuneHparams {
  image_encoder: string;
  text_encoder: string;
  context_length?: number;
  embed_dim?: number;
  avg_word_embs?: boolean;
  image_size?: number;
}

/** Whether `hparams` (a checkpoint's) describe a fine-tuned (CustomClipWrapper) model. */
export function isFinetuneHparams(hparams: unknown): hparams is FinetuneHparams {
  const h = hparams as Partial<FinetuneHparams> | null;
  return !!h && typeof h.image_encoder === 'string' && typeof h.text_encoder === 'string';
}

/**
 * Rebuilds the DualEncoder a fine-tuning run trained (weights still to be loaded from its
 * checkpoint), with the tokenizer its texts need.
 */
export async function buildDualEncoder(h: FinetuneHparams, log: ((line: string) => void) | null = console.log): Promise<{ model: DualEncoder; tokenizer: HfTokenizer; contextLength: number; imageSize: number }> {
  const image = await makeImageEncoder(h.image_encoder);
  const { text, tokenizer, contextLength } = await loadTextTower(h.text_encoder, h.context_length ?? 77, log);
  const model = new DualEncoder(image, text, {
    imageDim: image.numFeatures,
    textDim: text.hiddenSize,
    embedDim: h.embed_dim,
    avgWordEmbs: h.avg_word_embs ?? false,
    padTokenId: tokenizer.padTokenId,
  });
  return { model, tokenizer, contextLength, imageSize: h.image_size ?? 224 };
}
