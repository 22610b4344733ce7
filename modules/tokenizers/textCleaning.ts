import { htmlUnescape } from './htmlUnescape.js';

/**
 * CLIP's caption cleaning (`basic_clean` + `whitespace_clean` + `.lower()` in OpenAI's
 * `simple_tokenizer.py`), reproduced in TypeScript.
 *
 * OpenAI's `basic_clean` starts with `ftfy.fix_text`, a Python library with no JavaScript
 * port. {@link basicFix} applies the parts of ftfy 6's default `fix_text` that are fixed
 * per-character tables (ligatures, full-width forms, curly quotes, control characters,
 * NFC). It does NOT do ftfy's heuristic repairs: mojibake re-decoding (`fix_encoding`,
 * e.g. `"Ã©"` -> `"é"`, and C1 controls read as Windows-1252), ftfy's own extra HTML
 * unescape pass (so `"&amp;amp;amp;"` is decoded two levels, not three), ANSI terminal
 * escapes and surrogate-pair repair. On text that needs those repairs the ids can differ
 * from OpenAI's; on everything else they are identical.
 */

// ftfy `chardata.LIGATURES`: Latin ligatures and legacy digraphs, usually copy/paste artefacts.
const LIGATURES: ReadonlyMap<string, string> = new Map([
  ['\u0132', 'IJ'], ['\u0133', 'ij'], ['\u0149', '\u02bcn'], ['\u01f1', 'DZ'], ['\u01f2', 'Dz'],
  ['\u01f3', 'dz'], ['\u01c4', 'D\u017d'], ['\u01c5', 'D\u017e'], ['\u01c6', 'd\u017e'],
  ['\u01c7', 'LJ'], ['\u01c8', 'Lj'], ['\u01c9', 'lj'], ['\u01ca', 'NJ'], ['\u01cb', 'Nj'],
  ['\u01cc', 'nj'], ['\ufb00', 'ff'], ['\ufb01', 'fi'], ['\ufb02', 'fl'], ['\ufb03', 'ffi'],
  ['\ufb04', 'ffl'], ['\ufb05', '\u017ft'], ['\ufb06', 'st'],
]);
const LIGATURE_RE = /[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g;

// ftfy `chardata.WIDTH_MAP`: U+3000 and U+FF01..U+FFEF replaced by their NFKC form.
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
function fixWidth(ch: string): string {
  return ch === '\u3000' ? ' ' : ch.normalize('NFKC');
}

// ftfy `chardata.SINGLE_QUOTE_RE` / `DOUBLE_QUOTE_RE` (`uncurl_quotes`).
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;

// ftfy `chardata.CONTROL_CHARS` (`remove_control_chars`): C0 controls other than
// \t \n \f \r, DEL, deprecated format characters, the BOM and interlinear annotations.
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/**
 * The table-driven subset of `ftfy.fix_text` (ftfy 6 defaults), in ftfy's order: break
 * Latin ligatures, map full-width/half-width forms to standard width, straighten curly
 * quotes, drop control characters, NFC-normalise. See the module comment for what is not
 * reproduced.
 */
export function basicFix(text: string): string {
  return text
    .replace(LIGATURE_RE, (ch) => LIGATURES.get(ch) ?? ch)
    .replace(WIDTH_RE, fixWidth)
    .replace(SINGLE_QUOTE_RE, "'")
    .replace(DOUBLE_QUOTE_RE, '"')
    .replace(CONTROL_RE, '')
    .normalize('NFC');
}

// Python's `str.isspace()` set: Unicode White_Space plus U+001C..U+001F (bidi class B/S).
// `str.strip()` removes these; the `regex` module's `\s` (used by whitespace_clean and
// the token pattern) is White_Space alone, and JavaScript's `\s` differs from both
// (it adds U+FEFF and lacks U+0085), so the sets are spelled out.
const PY_STRIP_START = /^[\p{White_Space}\x1c-\x1f]+/u;
const PY_STRIP_END = /[\p{White_Space}\x1c-\x1f]+$/u;
const WHITESPACE_RUN = /\p{White_Space}+/gu;

function pyStrip(text: string): string {
  return text.replace(PY_STRIP_START, '').replace(PY_STRIP_END, '');
}

/**
 * The full cleaning CLIP applies before tokenizing: {@link basicFix}, `html.unescape`
 * twice (CLIP's own double unescape, for captions that were escaped twice), strip,
 * collapse whitespace runs to one space, strip, lower-case.
 *
 * `decode(encode(text))` of {@link ClipTokenizer} gives back `cleanText(text)` (up to the
 * spaces BPE puts between words and punctuation).
 *
 * @example
 * ```ts
 * cleanText('  Fish &amp;amp; Chips\n\n'); // 'fish & chips'
 * ```
 */
export function cleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(basicFix(text))));
  return pyStrip(basic.replace(WHITESPACE_RUN, ' ')).toLowerCase();
}
