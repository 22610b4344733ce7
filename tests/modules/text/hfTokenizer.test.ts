import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { HfTokenizer, toTokenTensors } from '../../../modules/text/hfTokenizer.js';
import type { TextTokenizer } from '../../../modules/tokenizers/types.js';
import { BPE_JSON, WORDPIECE_JSON } from './tokenizerFixtures.js';

const root = mkdtempSync(join(tmpdir(), 'lightclip-hftok-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const rows = (ids: Int32Array, width: number): number[][] => Array.from({ length: ids.length / width }, (_, i) => Array.from(ids.subarray(i * width, (i + 1) * width)));

describe('HfTokenizer (WordPiece)', () => {
  const tok = HfTokenizer.fromJson(WORDPIECE_JSON, { model_max_length: 16 });

  it('encodes with [CLS]/[SEP], lower-casing, word pieces and [UNK], ids checked by hand', () => {
    // [CLS] a photo of cat ##s play ##ing ! [UNK](zebra) [SEP]
    expect(tok.encode('A photo of Cats playing! zebra')).toEqual([2, 5, 6, 7, 8, 11, 12, 13, 14, 1, 3]);
    expect(tok.padTokenId).toBe(0);
    expect(tok.contextLength).toBe(16);
    expect(tok.decode([2, 5, 8, 11, 3])).toBe('a cats');
  });

  it("pads to the batch's longest row with padding 'longest', with a 1/0 attention mask", () => {
    const b = tok.tokenize(['a cat', 'the dog playing.'], { padding: 'longest' });
    expect(b.shape).toEqual([2, 7]);
    expect(rows(b.inputIds, 7)).toEqual([
      [2, 5, 8, 3, 0, 0, 0],
      [2, 10, 9, 12, 13, 15, 3],
    ]);
    expect(rows(b.attentionMask, 7)).toEqual([
      [1, 1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 1, 1, 1],
    ]);
    expect(b.ids).toBe(b.inputIds);
  });

  it("pads to max_length and truncates keeping [SEP] last", () => {
    const b = tok.tokenize(['a cat', 'the dog playing.'], { maxLength: 5, padding: 'max_length', truncation: true });
    expect(b.shape).toEqual([2, 5]);
    expect(rows(b.inputIds, 5)).toEqual([
      [2, 5, 8, 3, 0],
      [2, 10, 9, 12, 3],
    ]);
    expect(rows(b.attentionMask, 5)).toEqual([
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
    ]);
  });

  it('implements TextTokenizer: a number is a fixed width (default the context length)', () => {
    const asInterface: TextTokenizer = tok;
    const b = asInterface.tokenize(['a photo'], 6);
    expect(Array.from(b.ids)).toEqual([2, 5, 6, 3, 0, 0]);
    expect(asInterface.tokenize(['a']).shape).toEqual([1, 16]);
    expect(tok.tokenize(['a'], { padding: 'longest' }).shape).toEqual([1, 3]);
  });

  it('pads on the left when the config says so', () => {
    const left = HfTokenizer.fromJson(WORDPIECE_JSON, { padding_side: 'left', pad_token: '[PAD]' });
    const b = left.tokenize(['a', 'a cat'], { padding: 'longest' });
    expect(rows(b.inputIds, 4)).toEqual([
      [0, 2, 5, 3],
      [2, 5, 8, 3],
    ]);
    expect(rows(b.attentionMask, 4)[0]).toEqual([0, 1, 1, 1]);
  });

  it('rejects impossible lengths and untruncated overflow', () => {
    expect(() => tok.tokenize(['a'], { maxLength: 2 })).toThrow(/`maxLength` must be an integer > 2/);
    expect(() => tok.tokenize(['the dog playing.'], { maxLength: 4, padding: 'max_length', truncation: false })).toThrow(MisconfigurationError);
    expect(() => HfTokenizer.fromJson({ model: { type: 'Nope' }, added_tokens: [] })).toThrow(MisconfigurationError);
  });

  it('converts a batch to int32 tensors', () => {
    const { inputIds, attentionMask } = toTokenTensors(tok.tokenize(['a cat', 'a'], { padding: 'longest' }));
    expect(inputIds.shape).toEqual([2, 4]);
    expect(inputIds.dtype).toBe('int32');
    expect(Array.from(attentionMask.dataSync())).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    inputIds.dispose();
    attentionMask.dispose();
  });
});

describe('HfTokenizer (byte-level BPE, RoBERTa)', () => {
  it('merges by rank and wraps in <s> … </s>, padding with <pad> = 1; loads from a directory', async () => {
    const dir = join(root, 'roberta-tok');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(BPE_JSON));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 8, pad_token: '<pad>' }));
    const tok = await HfTokenizer.fromPretrained(dir);
    expect(tok.encode('a cat a dog')).toEqual([0, 4, 10, 11, 17, 2]);
    const b = tok.tokenize(['a cat a dog', 'a dog'], { padding: 'max_length' });
    expect(rows(b.inputIds, 8)).toEqual([
      [0, 4, 10, 11, 17, 2, 1, 1],
      [0, 4, 17, 2, 1, 1, 1, 1],
    ]);
    expect(rows(b.attentionMask, 8)[1]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(tok.tokenize(['a cat a dog'], 4).ids).toEqual(Int32Array.from([0, 4, 10, 2]));
  });
});
