import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { tf } from '../../core/tf.js';
import { cleanText } from './textCleaning.js';
import type { TextTokenizer, TokenizedBatch } from './types.js';

/** CLIP's text context length: every OpenAI and open_clip text tower uses 77 positions. */
export const CLIP_CONTEXT_LENGTH = 77;

// simple_tokenizer.py keeps `merges[1:49152-256-2+1]`, the first 48,894 merges after the
// header line; with 256 byte symbols, their 256 `</w>` forms and 2 special tokens that makes
// the 49,408 ids of every CLIP text tower.
const NUM_MERGES = 49152 - 256 - 2;
const SOT = '<|startoftext|>';
const EOT = '<|endoftext|>';

// simple_tokenizer.py's pattern. `\s` is written `\p{White_Space}`, which is what the
// `regex` module's `\s` matches (JavaScript's adds U+FEFF). CLIP compiles it with
// `re.IGNORECASE`; on lower-cased text that flag changes only two characters, checked
// against Python over every code point: U+017F `ſ` case-folds to `s` (so `'ſ` is the
// `'s` contraction), and U+0345 folds to the letter `ι`, so it matches neither the letter
// class nor its complement and is dropped. Both are spelled out here instead of using
// JavaScript's `i`, whose folding differs.
const TOKEN_PATTERN =
  /<\|[sſ]tartoftext\|>|<\|endoftext\|>|'[sſ]|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}\u0345]+/gu;

// Unique words seen while tokenizing a web-scale dataset grow without bound; the cache is
// cleared when it reaches this size rather than growing forever (it only saves time).
const MAX_CACHE_ENTRIES = 200_000;

const UTF8 = new TextEncoder();

/**
 * GPT-2's reversible byte -> printable-character table (`bytes_to_unicode`): printable
 * Latin-1 bytes map to themselves, the other 68 to U+0100 onwards, so BPE never sees
 * whitespace or control characters. Entry order matters: it fixes vocabulary ids 0..255.
 */
function bytesToUnicode(): Array<[number, string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]);
}

interface BpeTables {
  readonly encoder: Map<string, number>;
  readonly decoder: Map<number, string>;
  /** Merge rank keyed by `"first second"` (symbols never contain a space). */
  readonly ranks: Map<string, number>;
  readonly byteEncoder: string[];
  readonly byteDecoder: Map<string, number>;
}

// One parse per file for the whole process, shared by every tokenizer instance.
const tablesByPath = new Map<string, BpeTables>();

function loadTables(path: string): BpeTables {
  const cached = tablesByPath.get(path);
  if (cached) return cached;
  const raw = readFileSync(path);
  // gzip magic 1f 8b: accept the shipped .gz and an already-decompressed copy alike.
  const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  // Only the header and the first NUM_MERGES lines are used (the file has 262,145): cut
  // the buffer there rather than decoding and splitting all 3 MB.
  let end = -1;
  for (let line = 0; line <= NUM_MERGES; line++) {
    end = bytes.indexOf(0x0a, end + 1);
    if (end < 0) break;
  }
  const lines = bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8').split('\n');
  if (lines.length < NUM_MERGES + 1) {
    throw new MisconfigurationError(
      `BPE merges file ${path} has ${lines.filter((l) => l.trim() !== '').length - 1} merge lines; CLIP's tokenizer needs ${NUM_MERGES} after the header line (use bpe_simple_vocab_16e6.txt.gz).`,
    );
  }
  const table = bytesToUnicode();
  const byteEncoder: string[] = new Array<string>(256);
  const byteDecoder = new Map<string, number>();
  for (const [b, ch] of table) {
    byteEncoder[b] = ch;
    byteDecoder.set(ch, b);
  }
  const vocab: string[] = table.map(([, ch]) => ch);
  for (const [, ch] of table) vocab.push(`${ch}</w>`);
  const ranks = new Map<string, number>();
  for (let i = 1; i <= NUM_MERGES; i++) {
    const line = lines[i]!;
    // Python's `merge.split()`; the file uses single spaces, so try that first (it is 5x
    // faster than a regex split over 48,894 lines).
    let parts = line.split(' ');
    if (parts.length !== 2 || /\s/.test(line.replace(' ', ''))) parts = line.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new MisconfigurationError(
        `BPE merges file ${path}, line ${i + 1}: expected two symbols separated by a space, got ${showValue(lines[i])}.`,
      );
    }
    // Later duplicates overwrite earlier ones, as Python's dict(zip(...)) does.
    ranks.set(`${parts[0]} ${parts[1]}`, i - 1);
    vocab.push(parts[0]! + parts[1]!);
  }
  vocab.push(SOT, EOT);
  const encoder = new Map<string, number>();
  vocab.forEach((token, id) => encoder.set(token, id));
  const decoder = new Map<number, string>();
  for (const [token, id] of encoder) decoder.set(id, token);
  const tables: BpeTables = { encoder, decoder, ranks, byteEncoder, byteDecoder };
  tablesByPath.set(path, tables);
  return tables;
}

/** Options of {@link ClipTokenizer.tokenize}. */
export interface ClipTokenizeOptions {
  /**
   * When a text needs more than `contextLength` ids: `true` keeps the first
   * `contextLength - 1` and ends the row with `<|endoftext|>` (open_clip); `false` throws.
   */
  truncate?: boolean;
}

/** Construction options of {@link ClipTokenizer}. */
export interface ClipTokenizerOptions {
  /** The merges file (`.txt` or `.txt.gz`); defaults to the bundled `bpe_simple_vocab_16e6.txt.gz`. */
  bpePath?: string;
  /** Default row width of `tokenize`; 77 unless a model was trained with another. */
  contextLength?: number;
}

function checkContextLength(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2) {
    throw new MisconfigurationError(
      `\`${key}\` must be an integer >= 2 (room for <|startoftext|> and <|endoftext|>), got ${showValue(value)}.`,
    );
  }
  return value;
}

/**
 * CLIP's byte-level BPE tokenizer, id for id the same as OpenAI's `simple_tokenizer.py`
 * and open_clip's `tokenize` (text cleaning caveat: see `textCleaning.ts`).
 *
 * Each text becomes `<|startoftext|>` (49406), its BPE ids, `<|endoftext|>` (49407), padded
 * with 0. The vocabulary is read on first use and shared by all instances on the same file.
 *
 * @example
 * ```ts
 * const tok = ClipTokenizer.default();
 * tok.encode('a photo of a cat');            // [320, 1125, 539, 320, 2368]
 * const { ids, shape } = tok.tokenize(['a photo of a cat', 'a dog']); // shape [2, 77]
 * ```
 */
export class ClipTokenizer implements TextTokenizer {
  private static shared: ClipTokenizer | null = null;

  /** Default row width of {@link ClipTokenizer.tokenize}. */
  readonly contextLength: number;
  /** Absolute path of the merges file. */
  readonly bpePath: string;
  private readonly cache = new Map<string, string[]>();

  /**
   * @throws MisconfigurationError when `bpePath` does not exist or `contextLength` < 2.
   */
  constructor(options: ClipTokenizerOptions = {}) {
    this.bpePath = resolve(options.bpePath ?? assetPath('clip', 'bpe_simple_vocab_16e6.txt.gz'));
    if (!existsSync(this.bpePath)) {
      throw new MisconfigurationError(
        `\`bpePath\` ${showValue(this.bpePath)} does not exist; pass CLIP's bpe_simple_vocab_16e6.txt.gz (or omit it for the bundled copy).`,
      );
    }
    this.contextLength = checkContextLength(options.contextLength ?? CLIP_CONTEXT_LENGTH, 'contextLength');
  }

  /** A tokenizer over the merges file at `path` (default: the bundled CLIP vocabulary). */
  static fromFile(path?: string, options: Omit<ClipTokenizerOptions, 'bpePath'> = {}): ClipTokenizer {
    return new ClipTokenizer({ ...options, bpePath: path });
  }

  /** The process-wide tokenizer over the bundled vocabulary, context length 77. */
  static default(): ClipTokenizer {
    ClipTokenizer.shared ??= new ClipTokenizer();
    return ClipTokenizer.shared;
  }

  private get tables(): BpeTables {
    return loadTables(this.bpePath);
  }

  /** Number of ids, 49408 for CLIP's vocabulary. */
  get vocabSize(): number {
    return this.tables.encoder.size;
  }

  /** Id of `<|startoftext|>` (49406). */
  get sotTokenId(): number {
    return this.tables.encoder.get(SOT)!;
  }

  /** Id of `<|endoftext|>` (49407); the text tower pools at this, the highest id. */
  get eotTokenId(): number {
    return this.tables.encoder.get(EOT)!;
  }

  /** BPE of one pre-token (already byte-encoded), as `simple_tokenizer.py`'s `bpe`. */
  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const { ranks } = this.tables;
    let word: string[] = token.split('');
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      // The lowest-ranked adjacent pair merges first, everywhere it occurs.
      let bestRank = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const rank = ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (bestRank === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]!);
        }
      }
      word = merged;
    }
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
    this.cache.set(token, word);
    return word;
  }

  /**
   * The BPE symbols of `text` after cleaning, e.g. `['a</w>', 'photo</w>']`; useful to see
   * why a text got the ids it did.
   */
  tokens(text: string): string[] {
    const { byteEncoder } = this.tables;
    const out: string[] = [];
    for (const match of cleanText(text).matchAll(TOKEN_PATTERN)) {
      const piece = match[0];
      if (piece === SOT || piece === EOT) {
        // Special tokens typed in the text stay whole, as the pre-filled cache does in CLIP.
        out.push(piece);
        continue;
      }
      let encoded = '';
      for (const byte of UTF8.encode(piece)) encoded += byteEncoder[byte];
      out.push(...this.bpe(encoded));
    }
    return out;
  }

  /** Ids of `text` without `<|startoftext|>`/`<|endoftext|>` or padding. */
  encode(text: string): number[] {
    const { encoder } = this.tables;
    return this.tokens(text).map((symbol) => {
      const id = encoder.get(symbol);
      // Every merge result and byte symbol is in the vocabulary by construction.
      if (id === undefined) throw new Error(`BPE produced ${showValue(symbol)}, which is not in the vocabulary.`);
      return id;
    });
  }

  /**
   * Text of `ids`: symbols joined, bytes decoded as UTF-8 (invalid sequences become
   * U+FFFD), and each end-of-word marker turned into a space, as `simple_tokenizer.py` does.
   * @throws MisconfigurationError for an id outside `[0, vocabSize)`.
   */
  decode(ids: ArrayLike<number>): string {
    const { decoder, byteDecoder } = this.tables;
    let symbols = '';
    for (let i = 0; i < ids.length; i++) {
      const symbol = decoder.get(ids[i]!);
      if (symbol === undefined) {
        throw new MisconfigurationError(`\`ids[${i}]\` = ${showValue(ids[i])} is not a token id; expected an integer in [0, ${this.vocabSize}).`);
      }
      symbols += symbol;
    }
    const bytes = new Uint8Array(symbols.length);
    for (let i = 0; i < symbols.length; i++) bytes[i] = byteDecoder.get(symbols[i]!)!;
    return new TextDecoder('utf-8').decode(bytes).replaceAll('</w>', ' ');
  }

  /**
   * Tokenizes texts into a `[n, contextLength]` int32 matrix: `<|startoftext|>`, the ids,
   * `<|endoftext|>`, then 0s. A text that does not fit keeps its first `contextLength - 1`
   * ids and ends with `<|endoftext|>` when `truncate` (default), as open_clip does.
   *
   * @throws MisconfigurationError for a bad `contextLength`, or naming the text when it does
   *   not fit and `truncate` is false.
   */
  tokenize(texts: string | string[], contextLength: number = this.contextLength, options: ClipTokenizeOptions = {}): TokenizedBatch {
    const width = checkContextLength(contextLength, 'contextLength');
    const truncate = options.truncate ?? true;
    const list = typeof texts === 'string' ? [texts] : texts;
    const ids = new Int32Array(list.length * width);
    const sot = this.sotTokenId;
    const eot = this.eotTokenId;
    list.forEach((text, row) => {
      const body = this.encode(text);
      const tooLong = body.length + 2 > width;
      if (tooLong && !truncate) {
        throw new MisconfigurationError(
          `Input ${showValue(text)} is too long for context length ${width} (${body.length + 2} tokens with <|startoftext|> and <|endoftext|>); pass \`truncate: true\` or a larger \`contextLength\`.`,
        );
      }
      const offset = row * width;
      ids[offset] = sot;
      const kept = tooLong ? width - 2 : body.length;
      for (let j = 0; j < kept; j++) ids[offset + 1 + j] = body[j]!;
      ids[offset + 1 + kept] = eot;
    });
    return { ids, shape: [list.length, width] };
  }

  /**
   * {@link ClipTokenizer.tokenize} as a `[n, contextLength]` int32 tfjs tensor (the caller
   * owns it and disposes it).
   */
  tokenizeToTensor(texts: string | string[], contextLength: number = this.contextLength, options: ClipTokenizeOptions = {}): tf.Tensor2D {
    const { ids, shape } = this.tokenize(texts, contextLength, options);
    return tf.tensor2d(ids, shape, 'int32');
  }
}
