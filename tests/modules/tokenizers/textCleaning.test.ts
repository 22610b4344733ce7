import { describe, expect, it } from 'vitest';
import { basicFix, cleanText } from '../../../modules/tokenizers/textCleaning.js';

describe('basicFix (the table-driven part of ftfy.fix_text)', () => {
  // Examples from ftfy's documentation of fix_text / uncurl_quotes / fix_character_width.
  it.each([
    ['curly quotes', '\u201chere\u2019s a test\u201d', '"here\'s a test"'],
    ['modifier apostrophe', 'don\u02bct', "don't"],
    ['ligatures', 'ﬂubberiﬁc ĳs ǅ', 'flubberific ijs Dž'],
    ['full-width letters and ideographic space', 'ＬＯＵＤ　ＮＯＩＳＥＳ', 'LOUD NOISES'],
    ['half-width katakana, recomposed by NFC', 'ｶﾞ', '\u30ac'],
    ['NFC', 'e\u0301 a\u0308', '\u00e9 \u00e4'],
    ['control characters, BOM, keeps \\t \\n \\f \\r', '\ufeff\u0000a\u0008\u001b\u007f\t\n\f\r\u206ab\ufffa', 'a\t\n\f\rb'],
  ])('%s', (_what, input, expected) => {
    expect(basicFix(input)).toBe(expected);
  });

  it('leaves ordinary text alone', () => {
    const text = 'A photo of a café in 東京 😊 — nothing else, ½ × 2';
    expect(basicFix(text)).toBe(text);
  });
});

// Expected values: whitespace_clean(basic_clean(x)).lower() of OpenAI's simple_tokenizer.py.
describe('cleanText (CLIP basic_clean + whitespace_clean + lower)', () => {
  it.each([
    ['  Fish &amp;amp; Chips\n\n', 'fish & chips'],
    ['\u001cA  b\u001c', 'a b'],
    ['\ufeffa', 'a'],
    ['A\u00a0B\u2003C\u3000D\u2028E', 'a b c d e'],
    ['Σ AΣ ΑΣ.', 'σ aς ας.'],
    ['İ', 'i\u0307'],
    ['', ''],
    [' \t\n ', ''],
  ])('%j -> %j', (input, expected) => {
    expect(cleanText(input)).toBe(expected);
  });
});
