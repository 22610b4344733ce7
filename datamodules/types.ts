import type { tf } from '../core/tf.js';

/**
 * What the image/text datamodules need from a tokenizer. It mirrors `TextTokenizer` of
 * `modules/tokenizers/types.ts` structurally, because `datamodules/` may not import
 * `modules/` (DESIGN §1): any tokenizer from there (CLIP BPE, Hugging Face) fits as is.
 */
export interface CaptionTokenizer {
  /**
   * Token ids of a batch of texts, row-major `[texts.length, contextLength]`, padded and
   * truncated to `contextLength` (the tokenizer's own when omitted).
   */
  tokenize(texts: string[], contextLength?: number): { ids: Int32Array; shape: [number, number] };
  /** The context length used when `tokenize` is called without one (77 for CLIP). */
  readonly contextLength: number;
}

/**
 * One batch of an image/text datamodule. `images` are CLIP-normalised, in lightclip's NHWC
 * activation layout; `captions[i]`/`paths[i]` are the caption drawn and the image file of
 * row `i`, kept for logging and zero-shot debugging. The Trainer disposes both tensors.
 */
export interface ImageTextBatch {
  images: tf.Tensor4D;
  texts: tf.Tensor2D;
  captions: string[];
  paths: string[];
}
