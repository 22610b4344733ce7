/**
 * A batch of token ids, row-major: row `i` holds text `i`, padded (or truncated) to
 * `shape[1]` ids. Kept as a plain typed array so datamodules can build batches without
 * touching tfjs; `tf.tensor2d(ids, shape, 'int32')` turns it into a tensor.
 */
export interface TokenizedBatch {
  /** `shape[0] * shape[1]` ids, row-major. */
  ids: Int32Array;
  /** `[number of texts, context length]`. */
  shape: [number, number];
}

/**
 * What a datamodule needs from a tokenizer: texts in, a fixed-width id matrix out. The CLIP
 * BPE tokenizer implements it, and so can a Hugging Face tokenizer wrapper, so datamodules
 * (which may not import `modules/` directly, DESIGN.md §1) take any tokenizer.
 */
export interface TextTokenizer {
  /**
   * Tokenizes `texts` to a `[texts.length, contextLength]` id matrix.
   * @param contextLength row width; defaults to {@link TextTokenizer.contextLength}.
   */
  tokenize(texts: string[], contextLength?: number): TokenizedBatch;
  /** The default row width (77 for CLIP). */
  readonly contextLength: number;
}
