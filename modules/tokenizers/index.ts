export { ClipTokenizer, CLIP_CONTEXT_LENGTH } from './clipTokenizer.js';
export type { ClipTokenizeOptions, ClipTokenizerOptions } from './clipTokenizer.js';
export { basicFix, cleanText } from './textCleaning.js';
export { htmlUnescape } from './htmlUnescape.js';
export type { TextTokenizer, TokenizedBatch } from './types.js';
