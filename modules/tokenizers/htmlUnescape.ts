import { readFileSync } from 'node:fs';
import { assetPath } from '../../core/paths.js';

/**
 * A port of Python's `html.unescape` (CPython 3.11 `Lib/html/__init__.py`), which CLIP's
 * tokenizer applies twice to every caption. Web captions (CC3M, LAION, YFCC) are full of
 * `&amp;`, `&quot;` and `&#39;`; decoding them differently from Python would give
 * different token ids than the published models were trained with, so the rules below
 * follow Python's exactly, including the HTML5 quirks for malformed references.
 */

// CPython's `_invalid_charrefs`: numeric references the HTML5 parser remaps
// (https://html.spec.whatwg.org/multipage/parsing.html#numeric-character-reference-end-state).
// 0x80-0x9F are read as Windows-1252, which is how browsers treat them.
const INVALID_CHARREFS = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'],
  [0x83, '\u0192'], [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'],
  [0x88, '\u02c6'], [0x89, '\u2030'], [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'],
  [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'], [0x90, '\x90'], [0x91, '\u2018'],
  [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'], [0x96, '\u2013'],
  [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** CPython's `_invalid_codepoints`: numeric references that decode to nothing. */
function isInvalidCodepoint(cp: number): boolean {
  return (
    (cp >= 0x01 && cp <= 0x08) ||
    cp === 0x0b ||
    (cp >= 0x0e && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    // U+xFFFE and U+xFFFF of every plane.
    (cp & 0xfffe) === 0xfffe
  );
}

// Same alternatives as CPython's `_charref`; the `u` flag makes `{1,32}` count code points
// as Python does.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

let entities: Map<string, string> | null = null;

/**
 * The HTML5 named references, loaded on the first `&name` seen: most captions have none,
 * so the 44 kB table is not read at import time.
 */
function html5Entities(): Map<string, string> {
  if (entities === null) {
    const path = assetPath('clip', 'html5_entities.json');
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { entities: Record<string, string> };
    entities = new Map(Object.entries(parsed.entities));
  }
  return entities;
}

function replaceCharref(match: string, body: string): string {
  if (body[0] === '#') {
    const hex = body[1] === 'x' || body[1] === 'X';
    const digits = body.slice(hex ? 2 : 1).replace(/;$/, '');
    // parseInt loses precision past 2^53, but such values are > 0x10FFFF either way.
    const num = parseInt(digits, hex ? 16 : 10);
    const remapped = INVALID_CHARREFS.get(num);
    if (remapped !== undefined) return remapped;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  const table = html5Entities();
  const exact = table.get(body);
  if (exact !== undefined) return exact;
  // Longest known prefix, as the standard defines for references without a `;`
  // (`&ampfoo` -> `&foo`); Python slices by code point, hence Array.from.
  const chars = Array.from(body);
  for (let x = chars.length - 1; x > 1; x--) {
    const prefix = chars.slice(0, x).join('');
    const value = table.get(prefix);
    if (value !== undefined) return value + chars.slice(x).join('');
  }
  return match;
}

/**
 * Decodes named and numeric character references (`&gt;`, `&#62;`, `&#x3e;`) with the
 * HTML5 rules of Python's `html.unescape`.
 *
 * @example
 * ```ts
 * htmlUnescape('fish &amp; chips'); // 'fish & chips'
 * htmlUnescape('&amp;amp;');        // '&amp;' (one level per call)
 * ```
 */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, replaceCharref);
}
