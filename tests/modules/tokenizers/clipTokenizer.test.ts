import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { assetPath } from '../../../core/paths.js';
import { ClipTokenizer, cleanText, type TextTokenizer } from '../../../modules/tokenizers/index.js';

const tok = ClipTokenizer.default();
const SOT = 49406;
const EOT = 49407;

/** `[SOT, ...encode(text), EOT]`, the unpadded row CLIP feeds its text tower. */
function row(text: string): number[] {
  return [SOT, ...tok.encode(text), EOT];
}

describe('ClipTokenizer vocabulary', () => {
  it('has CLIP sizes and special ids', () => {
    expect(tok.vocabSize).toBe(49408);
    expect(tok.sotTokenId).toBe(SOT);
    expect(tok.eotTokenId).toBe(EOT);
    expect(tok.contextLength).toBe(77);
  });

  it('orders byte symbols as bytes_to_unicode does: "!" is byte symbol 0, "a" is 64', () => {
    // A one-character word is its `</w>` form, 256 ids after the bare byte symbol.
    expect(tok.encode('!')).toEqual([256 + 0]);
    expect(tok.encode('a')).toEqual([256 + 64]);
  });

  it('implements the datamodule-facing TextTokenizer interface', () => {
    const generic: TextTokenizer = tok;
    expect(generic.tokenize(['a cat'], 8).shape).toEqual([1, 8]);
  });
});

// Published ids, each from a tokenizer test of another project that loads OpenAI's vocabulary.
describe('ClipTokenizer matches published CLIP ids', () => {
  it('DESIGN.md §3 and Bumblebee (test/bumblebee/text/clip_tokenizer_test.exs, openai/clip-vit-base-patch32)', () => {
    expect(row('a photo of a cat')).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect(row('a photo of a dog')).toEqual([49406, 320, 1125, 539, 320, 1929, 49407]);
  });

  it('Hugging Face transformers tests/models/clip/test_tokenization_clip.py integration string', () => {
    const text =
      'This is a test\nI was born in 92000, and this is falsé.\n生活的真谛是\nHi  Hello\nHi   Hello\n\n \n  \n Hello\n<s>\nhi<s>there\n' +
      'The following string should be properly encoded: Hello.\nBut ird and ปี   ird   ด\nHey how are you doing';
    expect(row(text)).toEqual([
      49406, 589, 533, 320, 1628, 328, 739, 2683, 530, 280, 273, 271, 271, 271, 267, 537, 589, 533, 2778, 82, 4166, 269, 33375,
      162, 112, 119, 163, 248, 226, 41570, 164, 108, 249, 42891, 363, 1883, 3306, 1883, 3306, 3306, 283, 338, 285, 1883, 283,
      338, 285, 997, 518, 3473, 9696, 1535, 655, 12560, 524, 33703, 281, 3306, 269, 767, 2770, 537, 1777, 505, 20278, 2770,
      38825, 2189, 829, 631, 592, 1960, 49407,
    ]);
    // Thai SARA II (U+0E35) is a mark, not \p{L}: it is split from its consonant.
    expect(tok.tokens('ปี')).toEqual(['à¸', 'Ľ</w>', 'à¸µ</w>']);
    expect(tok.tokens('falsé.')).toEqual(['fal', 's', 'Ã©</w>', '.</w>']);
  });

  // transformers.js tests/models/clip/test_tokenization_clip.js (Xenova/clip-vit-base-patch16),
  // texts from tests/models/test_strings.js. Its CONTROL_TOKENS and TILDE_NORMALIZATION cases
  // are left out: ftfy (OpenAI's cleaner) removes U+0000 and widens U+FF5E, HF's does not.
  const transformersJs: Array<[string, string, number[]]> = [
    ['SIMPLE', 'How are you doing?', [829, 631, 592, 1960, 286]],
    ['SIMPLE_WITH_PUNCTUATION', "You should've done this", [592, 1535, 1200, 1700, 589]],
    ['NUMBERS', '0123456789 0 1 2 3 4 5 6 7 8 9 10 100 1000',
      [271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 272, 271, 272, 271, 271, 272, 271, 271, 271]],
    ['TEXT_WITH_NUMBERS', 'The company was founded in 2016.', [518, 2634, 739, 12240, 530, 273, 271, 272, 277, 269]],
    ['PUNCTUATION', "A\n'll !!to?'d''d of, can't.", [320, 1342, 748, 531, 13610, 323, 8445, 323, 539, 267, 753, 713, 269]],
    ['PYTHON_CODE', 'def main():\n\tpass', [11649, 2623, 7, 4143, 3511]],
    ['JAVASCRIPT_CODE', 'let a = obj.toString();\ntoString();', [1094, 320, 284, 1411, 329, 269, 580, 9696, 7, 19686, 580, 9696, 7, 19686]],
    ['NEWLINES', 'This\n\nis\na\ntest.', [589, 533, 320, 1628, 269]],
    ['BASIC', 'UNwant\u00e9d,running', [569, 18356, 3459, 323, 267, 2761]],
    ['HELLO_WORLD_TITLECASE', 'Hello World', [3306, 1002]],
    ['CHINESE_ONLY', '生活的真谛是', [33375, 162, 112, 119, 163, 248, 226, 41570, 164, 108, 249, 42891, 363]],
    ['LEADING_SPACE', '   leading space', [3833, 2138]],
    ['TRAILING_SPACE', 'trailing space   ', [37427, 2138]],
    ['DOUBLE_SPACE', 'Hi  Hello', [1883, 3306]],
    ['CURRENCY', 'test $1 R2 #3 €4 £5 ¥6 ₣7 ₹8 ₱9 test',
      [1628, 259, 272, 337, 273, 258, 274, 6309, 275, 1950, 276, 20199, 277, 5227, 352, 278, 21777, 279, 5227, 365, 280, 1628]],
    ['CURRENCY_WITH_DECIMALS', 'I bought an apple for $1.00 at the store.', [328, 4142, 550, 3055, 556, 259, 272, 269, 271, 271, 536, 518, 2183, 269]],
    ['ELLIPSIS', 'you…  ', [592, 959]],
    ['TEXT_WITH_ESCAPE_CHARACTERS_2', 'you\u2026\u00a0\u00a0you\u2026\u00a0\u00a0', [592, 959, 592, 959]],
    ['SPIECE_UNDERSCORE', '▁This ▁is ▁a ▁test ▁.', [4168, 479, 589, 4168, 479, 533, 4168, 479, 320, 4168, 479, 1628, 4168, 223, 269]],
    ['POPULAR_EMOJIS', '\ud83d\ude02 \ud83d\udc4d \ud83e\udd23 \ud83d\ude0d \ud83d\ude2d \ud83c\udf89 \ud83d\ude4f \ud83d\ude0a \ud83d\udd25 \ud83d\ude01 \ud83d\ude05 \ud83e\udd17 \ud83d\ude06 \ud83d\udc4f \u2764\ufe0f \ud83d\udc9c \ud83d\udc9a \ud83d\udc97 \ud83d\udc99 \ud83d\udda4 \ud83d\ude0e \ud83d\udc4c \ud83e\udd73 \ud83d\udcaa \u2728 \ud83d\udc49 \ud83d\udc40 \ud83d\udcaf \ud83c\udf88 \ud83d\ude48 \ud83d\ude4c \ud83d\udc80 \ud83d\udc47 \ud83d\udc4b \u2705 \ud83c\udf81 \ud83c\udf1e \ud83c\udf38 \ud83d\udcb0',
      [1558, 4201, 9909, 1754, 3915, 3986, 5503, 3020, 3016, 4821, 9188, 10465, 10943, 4829, 1752, 4882, 6521, 6690, 4074, 10860, 4345, 4494, 28055,
        6440, 3531, 3988, 5908, 7018, 14448, 9516, 4855, 12158, 7475, 17686, 5564, 13462, 12980, 10980, 14078]],
    ['MULTIBYTE_EMOJIS (ZWJ sequences, skin tones, tag characters)',
      '\u2728 \ud83e\udd17 \ud83d\udc41\ufe0f \ud83d\udc71\ud83c\udffb \ud83d\udd75\u200d\u2642\ufe0f \ud83e\uddd9\ud83c\udffb\u200d\u2642 \ud83d\udc68\ud83c\udffb\u200d\ud83c\udf3e \ud83e\uddd1\u200d\ud83e\udd1d\u200d\ud83e\uddd1 ' +
        '\ud83d\udc69\u200d\u2764\u200d\ud83d\udc8b\u200d\ud83d\udc68 \ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66 \ud83e\uddd1\ud83c\udffb\u200d\ud83e\udd1d\u200d\ud83e\uddd1\ud83c\udffb ' +
        '\ud83c\udff4\udb40\udc67\udb40\udc62\udb40\udc65\udb40\udc6e\udb40\udc67\udb40\udc7f \ud83d\udc68\ud83c\udffb\u200d\u2764\ufe0f\u200d\ud83d\udc8b\u200d\ud83d\udc68\ud83c\udffc',
      [3531, 10465, 47796, 1001, 964, 109, 3702, 7692, 113, 10613, 8792, 247, 5042, 5177, 480, 18966, 46250, 39796, 8792, 239, 4244, 1793, 251, 4244,
        8792, 495, 26304, 1266, 4244, 12217, 4244, 964, 357, 26304, 26304, 48938, 4244, 964, 355, 8792, 239, 46250, 1793, 251, 4244, 8792, 239,
        3702, 39690, 175, 254, 223, 100, 175, 254, 223, 95, 175, 254, 223, 98, 175, 254, 223, 106, 175, 254, 223, 100, 175, 254, 223, 379, 18966,
        46250, 2626, 4244, 12217, 4244, 18966, 4027]],
  ];
  it.each(transformersJs)('transformers.js %s', (_name, text, ids) => {
    expect(tok.encode(text)).toEqual(ids);
  });

  it('uncertainty_baselines ClipTokenize and Paddle CLIPTokenizer tests (padding to a short context)', () => {
    const { ids, shape } = tok.tokenize(['This is a test string.', 'This another test string that is longer.'], 10);
    expect(shape).toEqual([2, 10]);
    expect(Array.from(ids)).toEqual([
      49406, 589, 533, 320, 1628, 9696, 269, 49407, 0, 0,
      49406, 589, 1380, 1628, 9696, 682, 533, 5349, 269, 49407,
    ]);
    const paddle = tok.tokenize('this is a test!').ids;
    expect(Array.from(paddle.subarray(0, 8))).toEqual([49406, 589, 533, 320, 1628, 256, 49407, 0]);
    expect(paddle.length).toBe(77);
  });
});

// Expected ids below were computed by running OpenAI's clip/simple_tokenizer.py (Python
// `regex` module, this vocabulary) on inputs that ftfy leaves unchanged.
describe('ClipTokenizer on tricky text (ids from OpenAI simple_tokenizer.py)', () => {
  const cases: Array<[string, string, number[]]> = [
    ['apostrophes', "don't", [847, 713]],
    ['apostrophes', "it's", [585, 568]],
    ['contractions and case', "Don't STOP, it's 5 o'clock!", [847, 713, 1691, 267, 585, 568, 276, 334, 262, 6716, 256]],
    ['stacked contractions', "they'll've we're I'd", [889, 1342, 1200, 649, 982, 328, 1896]],
    ['punctuation runs', 'hello, world! (really?) "quoted" ...', [3306, 267, 1002, 256, 263, 1414, 9626, 257, 27706, 257, 678]],
    ['numbers split digit by digit', '12345 3.14 1,000,000', [272, 273, 274, 275, 276, 274, 269, 272, 275, 272, 267, 271, 271, 271, 267, 271, 271, 271]],
    ['accented letters', 'café naïve résumé', [15304, 1097, 35689, 563, 29106, 7054, 4166]],
    ['CJK', '日本', [39121, 19277, 361]],
    ['kana and kanji', '東京タワー 日本語', [48338, 21078, 105, 34941, 2429, 107, 30391, 39121, 44353, 34002, 508]],
    ['Greek with final sigma', 'Ελληνικά Σ', [138, 113, 138, 119, 138, 119, 138, 115, 138, 121, 138, 117, 138, 118, 138, 361, 139, 481]],
    ['emoji in the vocabulary', '😊', [3020]],
    ['emoji by byte fallback', '🐈‍⬛ 👍🏽', [2074, 230, 4244, 7930, 505, 43722]],
    ['HTML entity', 'Fish &amp; Chips', [2759, 261, 8855]],
    ['HTML entities, named and numeric', '&lt;b&gt;bold&lt;/b&gt; &quot;x&quot; &#39;y&#39; &#x263A;',
      [283, 321, 285, 8911, 34308, 321, 285, 257, 343, 257, 262, 344, 262, 8703]],
    ['spaces, newlines, tabs', '  Hello\n\n  WORLD\t!  ', [3306, 1002, 256]],
    ['unicode spaces', 'A\u00a0B\u2003C\u3000D', [320, 321, 322, 323]],
    ['upper case', 'THE QUICK BROWN FOX', [518, 3712, 2866, 3240]],
    ['mixed case', 'MiXeD CaSe', [6780, 2068]],
    ['special token typed in text', 'a <|endoftext|> b', [320, 49407, 321]],
    ['symbols', 'C++ & C# -> done.', [322, 19056, 261, 322, 258, 5081, 1700, 269]],
    ['e-mail and url', 'e-mail: foo@bar.com, url https://x.org/a?b=1',
      [324, 268, 2614, 281, 23435, 287, 2411, 269, 2464, 267, 23464, 30901, 12441, 343, 269, 5593, 270, 320, 286, 321, 284, 272]],
    ['U+0345, dropped by CLIP\'s case-insensitive pattern', 'a\u0345b', [320, 321]],
  ];
  it.each(cases)('%s: %j', (_what, text, ids) => {
    expect(tok.encode(text)).toEqual(ids);
  });

  // ftfy.fix_text's documented fixes, applied by basicFix: equal ids to the fixed text.
  it.each([
    ['curly quotes', 'it\u2019s \u201cquoted\u201d', 'it\'s "quoted"'],
    ['full-width forms', 'ＬＯＵＤ　ＮＯＩＳＥＳ～', 'LOUD NOISES~'],
    ['ligatures', 'ﬂubberiﬁc', 'flubberific'],
    ['decomposed accents (NFC)', 'cafe\u0301', 'café'],
    ['control characters and BOM', '\ufeffa\u0000b\u007f', 'ab'],
  ])('ftfy-equivalent cleaning: %s', (_what, text, fixed) => {
    expect(tok.encode(text)).toEqual(tok.encode(fixed));
  });
});

describe('ClipTokenizer.tokenize', () => {
  it('pads the empty string (and blank text) with zeros after SOT, EOT', () => {
    const { ids, shape } = tok.tokenize(['', ' \n\t ']);
    expect(shape).toEqual([2, 77]);
    const expected = [SOT, EOT, ...new Array<number>(75).fill(0)];
    expect(Array.from(ids.subarray(0, 77))).toEqual(expected);
    expect(Array.from(ids.subarray(77))).toEqual(expected);
  });

  it('accepts a single string as a batch of one', () => {
    expect(tok.tokenize('a photo of a cat').shape).toEqual([1, 77]);
  });

  it('keeps a text of exactly contextLength tokens whole, truncates one more and keeps EOT at 76', () => {
    const fits = tok.tokenize('cat '.repeat(75)).ids;
    expect(fits[0]).toBe(SOT);
    expect(fits[75]).toBe(2368);
    expect(fits[76]).toBe(EOT);
    const long = tok.tokenize(['cat '.repeat(200), 'dog'], 77);
    const first = Array.from(long.ids.subarray(0, 77));
    expect(first[0]).toBe(SOT);
    expect(first.slice(1, 76)).toEqual(new Array<number>(75).fill(2368));
    expect(first[76]).toBe(EOT);
    expect(Array.from(long.ids.subarray(77, 80))).toEqual([SOT, 1929, EOT]);
  });

  it('throws naming the text when it is too long and truncate is false', () => {
    const text = 'cat '.repeat(76);
    expect(() => tok.tokenize([text], 77, { truncate: false })).toThrow(MisconfigurationError);
    expect(() => tok.tokenize([text], 77, { truncate: false })).toThrow(/Input "cat cat .*too long for context length 77/);
    expect(() => tok.tokenize(['cat '.repeat(75)], 77, { truncate: false })).not.toThrow();
  });

  it('rejects a context length that cannot hold SOT and EOT', () => {
    expect(() => tok.tokenize(['a'], 1)).toThrow(/`contextLength` must be an integer >= 2 .*got 1\./);
    expect(() => tok.tokenize(['a'], 2.5)).toThrow(MisconfigurationError);
    expect(() => new ClipTokenizer({ contextLength: 0 })).toThrow(/`contextLength`/);
  });

  it('returns an int32 tensor of the same ids', async () => {
    const t = tok.tokenizeToTensor(['a photo of a cat', 'a dog'], 16);
    try {
      expect(t.shape).toEqual([2, 16]);
      expect(t.dtype).toBe('int32');
      expect(Array.from(await t.data())).toEqual(Array.from(tok.tokenize(['a photo of a cat', 'a dog'], 16).ids));
    } finally {
      t.dispose();
    }
  });
});

describe('ClipTokenizer.decode', () => {
  it('decodes as simple_tokenizer.py: spaces after each word, special tokens verbatim', () => {
    expect(tok.decode([SOT, 829, 631, 592, 1960, 286, EOT])).toBe('<|startoftext|>how are you doing ? <|endoftext|>');
    expect(tok.decode(tok.encode("Don't STOP, it's 5 o'clock!"))).toBe("don 't stop , it 's 5 o ' clock ! ");
  });

  it('replaces an incomplete UTF-8 sequence with U+FFFD', () => {
    expect(tok.decode([164, 108])).toBe('\ufffd');
  });

  it.each([
    'a photo of a cat',
    '  Mixed   CASE\nwith\ttabs ',
    'café naïve 日本 東京タワー',
    'emoji 😊 🐈‍⬛ 👍🏽 ✨',
    "punctuation, quotes \"x\" and apostrophes don't it's!",
    'Fish &amp; Chips &lt;3',
    'numbers 12345 and 3.14',
  ])('round-trips %j to the cleaned text', (text) => {
    const decoded = tok.decode(tok.encode(text));
    // BPE puts a space after every word and between words and punctuation; everything
    // else (bytes of every character) must come back exactly.
    expect(decoded.replaceAll(' ', '')).toBe(cleanText(text).replaceAll(' ', ''));
    if (!/[^\p{L}\p{N}\s]/u.test(cleanText(text))) expect(decoded).toBe(`${cleanText(text)} `);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([320, 49408])).toThrow(/`ids\[1\]` = 49408 is not a token id; expected an integer in \[0, 49408\)/);
    expect(() => tok.decode([-1])).toThrow(MisconfigurationError);
  });
});

describe('ClipTokenizer files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lightclip-bpe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('default() is one shared instance on the bundled vocabulary', () => {
    expect(ClipTokenizer.default()).toBe(tok);
    expect(tok.bpePath).toBe(assetPath('clip', 'bpe_simple_vocab_16e6.txt.gz'));
  });

  it('reads an uncompressed copy of the merges file identically', () => {
    const plain = join(dir, 'bpe.txt');
    writeFileSync(plain, gunzipSync(readFileSync(assetPath('clip', 'bpe_simple_vocab_16e6.txt.gz'))));
    const other = ClipTokenizer.fromFile(plain, { contextLength: 16 });
    expect(other.contextLength).toBe(16);
    expect(other.encode('a photo of a cat, 日本')).toEqual(tok.encode('a photo of a cat, 日本'));
  });

  it('rejects a missing file at construction, naming the path', () => {
    expect(() => ClipTokenizer.fromFile(join(dir, 'nope.txt.gz'))).toThrow(/`bpePath` ".*nope\.txt\.gz" does not exist/);
  });

  it('rejects a file with too few merges on first use', () => {
    const short = join(dir, 'short.txt');
    writeFileSync(short, '#version: 0.2\ni n\nt h\n');
    const bad = ClipTokenizer.fromFile(short);
    expect(() => bad.encode('x')).toThrow(/has 2 merge lines; CLIP's tokenizer needs 48894/);
  });
});
