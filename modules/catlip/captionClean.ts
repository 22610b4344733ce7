/**
 * CoreNet's `caption_preprocessing` (corenet/data/datasets/utils/text.py), step by step:
 * URL-unquote → `+` to space → drop `<…>` tags → strip `\n` at both ends → runs of spaces to
 * one → `ftfy.fix_text` → `strip()` → `lower()`. Python's semantics are kept where JavaScript
 * differs (`.` in the tag regex matches `\r`; `str.strip` whitespace set; unquote's UTF-8
 * decoding with U+FFFD replacement applied only to ASCII runs).
 *
 * `fixText` is an ftfy 6.2 equivalent for the fixes that change captions: HTML entities (only
 * when no `<` is left), mojibake (UTF-8 read as Windows-1252/Latin-1), C1 controls, Latin
 * ligatures, full-width forms, curly quotes, line breaks, lone surrogates, terminal escapes,
 * control characters, NFC. It does not reproduce ftfy's badness scoring: a run of characters
 * is re-decoded whenever it is a valid UTF-8 sequence written in Windows-1252 (see README notes).
 */

import { htmlUnescape } from '../tokenizers/htmlUnescape.js';

/** `urllib.parse.unquote(s)` (UTF-8, errors='replace'). */
export function pyUnquote(s: string): string {
  if (!s.includes('%')) return s;
  // Python splits on ASCII runs; only those are percent-decoded, then UTF-8 decoded with replacement.
  const decoder = new TextDecoder('utf-8', { fatal: false });
  return s.replace(/[\x00-\x7f]+/g, (run) => {
    if (!run.includes('%')) return run;
    const bytes: number[] = [];
    const parts = run.split('%');
    for (let i = 0; i < parts[0]!.length; i++) bytes.push(parts[0]!.charCodeAt(i));
    for (let p = 1; p < parts.length; p++) {
      const item = parts[p]!;
      const hex = item.slice(0, 2);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        for (let i = 2; i < item.length; i++) bytes.push(item.charCodeAt(i));
      } else {
        bytes.push(37);
        for (let i = 0; i < item.length; i++) bytes.push(item.charCodeAt(i));
      }
    }
    return decoder.decode(Uint8Array.from(bytes));
  });
}

/** Python's `str.isspace` set, for `strip()`. */
const PY_WS = '\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';
export function pyStrip(s: string, chars: string = PY_WS): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a]!)) a++;
  while (b > a && chars.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

// Windows-1252 0x80..0x9F; undefined bytes (81 8D 8F 90 9D) decode to the C1 control itself ("sloppy").
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
const CHAR_TO_BYTE = new Map<number, number>();
for (let b = 0; b < 256; b++) CHAR_TO_BYTE.set(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80]! : b, b);
const BYTE_TO_CP1252 = (b: number): string => String.fromCharCode(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80]! : b);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Re-decodes runs that are UTF-8 byte sequences written out as Windows-1252/Latin-1 characters. */
export function fixMojibake(text: string): string {
  // Fast exit: mojibake of UTF-8 always starts with a lead byte Â..ô (0xC2..0xF4).
  if (!/[\u00c2-\u00f4]/.test(text)) return text;
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const lead = CHAR_TO_BYTE.get(text.charCodeAt(i));
    const need = lead === undefined ? 0 : lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2 : lead >= 0xf0 && lead <= 0xf4 ? 3 : 0;
    if (need > 0 && i + need < n + 0) {
      const bytes = [lead!];
      let ok = true;
      for (let k = 1; k <= need; k++) {
        const b = i + k < n ? CHAR_TO_BYTE.get(text.charCodeAt(i + k)) : undefined;
        if (b === undefined || b < 0x80 || b > 0xbf) {
          ok = false;
          break;
        }
        bytes.push(b);
      }
      if (ok) {
        try {
          out += strictUtf8.decode(Uint8Array.from(bytes));
          i += need + 1;
          continue;
        } catch {
          /* not valid UTF-8 (overlong, surrogate): keep as is */
        }
      }
    }
    out += text[i];
    i++;
  }
  return out;
}

const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž',
  'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
// ftfy's width map: U+3000 and every U+FF01..U+FFEF whose NFKC form differs.
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const widthFix = (c: string): string => (c === '\u3000' ? ' ' : c.normalize('NFKC'));
const C1_RE = /[\u0080-\u009f]/g;
const ANSI_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const PLAIN_ASCII_RE = /^[\x20-\x25\x27-\x7e\t\n]*$/;
const ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

function unescapeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(ENTITY_RE, (m) => {
    const u = htmlUnescape(m);
    return u.includes(';') && m.startsWith('&#') ? m : u;
  });
}

/** ftfy.fix_text (6.2 defaults), as far as captions need it; see the file comment. */
export function fixText(input: string): string {
  // Fast path: printable ASCII without '&' has nothing for any fixer to change.
  if (PLAIN_ASCII_RE.test(input)) return input;
  const html = !input.includes('<');
  let text = input;
  for (let round = 0; round < 4; round++) {
    const orig = text;
    if (html) text = unescapeEntities(text);
    text = fixMojibake(text);
    if (C1_RE.test(text)) text = text.replace(C1_RE, (c) => BYTE_TO_CP1252(c.charCodeAt(0)));
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
    text = text.replace(WIDTH_RE, widthFix);
    text = text.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"');
    text = text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\u0085]/g, '\n');
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_RE, '');
    text = text.normalize('NFC');
    if (text === orig) break;
  }
  return text;
}

/** CoreNet's caption_preprocessing. */
export function cleanCaption(caption: string): string {
  let t = pyUnquote(caption);
  t = t.replace(/\+/g, ' ');
  t = t.replace(/<[^\n]*?>/g, '');
  t = pyStrip(t, '\n');
  t = t.replace(/ {2,}/g, ' ');
  t = fixText(t);
  return pyStrip(t).toLowerCase();
}
