/**
 * Hugging Face tokenizers (`tokenizer.json`, plus `tokenizer_config.json` when present)
 * through `@huggingface/tokenizers`, with the batching transformers' `__call__` adds on
 * top: truncation that keeps the special tokens, padding to a fixed or the batch's longest
 * length, and an attention mask. Implements the datamodules' {@link TextTokenizer}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { tf, type Tensor } from '../../core/tf.js';
import type { TextTokenizer, TokenizedBatch } from '../tokenizers/types.js';
import { resolveFiles, type HubOptions } from './hub.js';

/** Options of {@link HfTokenizer.tokenize}, transformers' keyword arguments. */
export interface HfTokenizeOptions {
  /** Row width cap (default the tokenizer's `model_max_length`, else 512). */
  maxLength?: number;
  /**
   * 'max_length' (default) pads every row to `maxLength`, the fixed width the
   * {@link TextTokenizer} contract promises; 'longest' pads to the batch's longest row.
   */
  padding?: 'max_length' | 'longest';
  /** Cut sequences longer than `maxLength`, keeping the special tokens (default true). */
  truncation?: boolean;
}

/** A tokenized batch: ids, attention mask, and `[B, L]`. `ids` and `inputIds` are the same array. */
export interface HfTokenizedBatch extends TokenizedBatch {
  inputIds: Int32Array;
  /** 1 for tokens (special ones included), 0 for padding. */
  attentionMask: Int32Array;
}

/** Options of {@link HfTokenizer.fromJson}. */
export interface HfTokenizerOptions {
  /** Override the padding id (default: tokenizer.json's `padding.pad_id`, the config's `pad_token`, then `[PAD]`/`<pad>`). */
  padTokenId?: number;
  /** Default row width (default `model_max_length` of the config, else 512). */
  contextLength?: number;
}

function obj(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new MisconfigurationError(`${file}: not readable JSON (${(err as Error).message})`);
  }
}

/** A token named by a config: a string, or an AddedToken object `{content: ...}`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const c = obj(v).content;
  return typeof c === 'string' ? c : undefined;
}

/**
 * A Hugging Face tokenizer producing fixed-width id matrices.
 * @example
 * const tok = await HfTokenizer.fromPretrained(dir);
 * const batch = tok.tokenize(['a photo of a cat'], { maxLength: 32, padding: 'max_length' });
 * const { inputIds, attentionMask } = toTokenTensors(batch);
 */
export class HfTokenizer implements TextTokenizer {
  readonly padTokenId: number;
  readonly contextLength: number;
  /** Which side padding goes (`padding_side` of the config; right by default). */
  readonly paddingSide: 'left' | 'right';
  private readonly numSpecial: number;
  private readonly unkId: number | undefined;

  private constructor(
    private readonly tok: Tokenizer,
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
    options: HfTokenizerOptions,
    source: string,
  ) {
    const padding = obj(tokenizerJson.padding);
    const candidates = [options.padTokenId, typeof padding.pad_id === 'number' ? padding.pad_id : undefined];
    const padName = tokenContent(config.pad_token);
    for (const name of [padName, '[PAD]', '<pad>']) if (name !== undefined) candidates.push(tok.token_to_id(name));
    const pad = candidates.find((c) => c !== undefined);
    if (pad === undefined) {
      throw new MisconfigurationError(`${source}: no padding token (set \`pad_token\` in tokenizer_config.json or pass \`padTokenId\`)`);
    }
    this.padTokenId = pad;
    const mml = config.model_max_length;
    // transformers stores "no limit" as 1e30 (VERY_LARGE_INTEGER); treat it as absent.
    this.contextLength = options.contextLength ?? (typeof mml === 'number' && mml > 0 && mml < 1e6 ? mml : 512);
    this.paddingSide = config.padding_side === 'left' ? 'left' : 'right';
    this.numSpecial = this.postProcess([]).length;
    this.unkId = tok.model?.unk_token_id;
  }

  /**
   * Builds a tokenizer from parsed `tokenizer.json` and `tokenizer_config.json` contents.
   * @throws MisconfigurationError when the JSON is not a tokenizer or has no padding token.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}, options: HfTokenizerOptions = {}, source = 'tokenizer.json'): HfTokenizer {
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson as object, obj(tokenizerConfig));
    } catch (err) {
      throw new MisconfigurationError(`${source}: not a supported Hugging Face tokenizer (${(err as Error).message})`);
    }
    return new HfTokenizer(tok, obj(tokenizerJson), obj(tokenizerConfig), options, source);
  }

  /**
   * Loads `tokenizer.json` (and `tokenizer_config.json` if present) from a directory or a
   * hub id (fetched into the cache when online; see `resolveFiles`).
   */
  static async fromPretrained(idOrDir: string, options: HubOptions & HfTokenizerOptions = {}): Promise<HfTokenizer> {
    const { dir, files } = await resolveFiles(idOrDir, [{ anyOf: ['tokenizer.json'] }, { anyOf: ['tokenizer_config.json'], optional: true }], options);
    const file = join(dir, 'tokenizer.json');
    const config = files[1] && existsSync(join(dir, files[1])) ? readJson(join(dir, files[1])) : {};
    return HfTokenizer.fromJson(readJson(file), config, options, file);
  }

  /** Adds the post-processor's special tokens ([CLS] … [SEP], <s> … </s>). */
  private postProcess(tokens: string[]): string[] {
    const pp = this.tok.post_processor;
    return pp ? pp(tokens, null, true).tokens : tokens;
  }

  private toId(token: string): number {
    const id = this.tok.token_to_id(token) ?? this.unkId;
    if (id === undefined) throw new Error(`HfTokenizer: token ${showValue(token)} has no id and the vocabulary has no unknown token`);
    return id;
  }

  /** Ids of one text with special tokens, truncated to `maxLength` when given (specials kept). */
  encode(text: string, maxLength?: number): number[] {
    let tokens = this.tok.tokenize(text);
    if (maxLength !== undefined) tokens = tokens.slice(0, Math.max(0, maxLength - this.numSpecial));
    return this.postProcess(tokens).map((t) => this.toId(t));
  }

  /** Text of `ids` (special tokens dropped unless `skipSpecialTokens` is false). */
  decode(ids: readonly number[], skipSpecialTokens = true): string {
    return ids.length ? this.tok.decode([...ids], { skip_special_tokens: skipSpecialTokens }) : '';
  }

  /**
   * Tokenizes a batch into a `[B, L]` id matrix and attention mask.
   * @param options a row width (the {@link TextTokenizer} form: pad to exactly that width,
   *   truncating) or {@link HfTokenizeOptions}.
   * @throws MisconfigurationError for a `maxLength` too small to hold the special tokens,
   *   or a text longer than `maxLength` with `truncation: false` and 'max_length' padding.
   */
  tokenize(texts: string[], options?: number | HfTokenizeOptions): HfTokenizedBatch {
    const o: HfTokenizeOptions = typeof options === 'number' ? { maxLength: options, padding: 'max_length', truncation: true } : (options ?? {});
    const maxLength = o.maxLength ?? this.contextLength;
    const padding = o.padding ?? 'max_length';
    const truncation = o.truncation ?? true;
    if (!Number.isInteger(maxLength) || maxLength <= this.numSpecial) {
      throw new MisconfigurationError(`\`maxLength\` must be an integer > ${this.numSpecial} (the special tokens), got ${showValue(maxLength)}`);
    }
    if (padding !== 'max_length' && padding !== 'longest') {
      throw new MisconfigurationError(`\`padding\` must be "max_length" or "longest", got ${showValue(padding)}`);
    }
    const rows = texts.map((t) => this.encode(t, truncation ? maxLength : undefined));
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    if (padding === 'max_length' && longest > maxLength) {
      throw new MisconfigurationError(`A text has ${longest} tokens, more than \`maxLength\` ${maxLength}, and \`truncation\` is false`);
    }
    const width = padding === 'max_length' ? maxLength : longest;
    const ids = new Int32Array(rows.length * width).fill(this.padTokenId);
    const mask = new Int32Array(rows.length * width);
    rows.forEach((r, i) => {
      const start = i * width + (this.paddingSide === 'left' ? width - r.length : 0);
      ids.set(r, start);
      mask.fill(1, start, start + r.length);
    });
    return { ids, inputIds: ids, attentionMask: mask, shape: [rows.length, width] };
  }
}

/** The batch as int32 tensors `[B, L]` for a text encoder's `forward` (caller disposes). */
export function toTokenTensors(batch: HfTokenizedBatch): { inputIds: Tensor; attentionMask: Tensor } {
  return {
    inputIds: tf.tensor2d(batch.inputIds, batch.shape, 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, batch.shape, 'int32'),
  };
}
