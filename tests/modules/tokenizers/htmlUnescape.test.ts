import { describe, expect, it } from 'vitest';
import { htmlUnescape } from '../../../modules/tokenizers/htmlUnescape.js';

// Every expected value is what CPython 3.11's html.unescape returns for the input.
describe('htmlUnescape (Python html.unescape)', () => {
  it.each([
    ['&amp;', '&'],
    ['&amp;amp;', '&amp;'],
    ['&ampx', '&x'],
    ['&amp', '&'],
    ['&AMP;', '&'],
    ['&notin;', '\u2209'],
    ['&notit;', '\u00acit;'],
    ['&Eacute', '\u00c9'],
    ['&ltx', '<x'],
    ['&unknown;', '&unknown;'],
    ['&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;', '&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;'],
    ['&;', '&;'],
    ['a & b', 'a & b'],
    ['&#65', 'A'],
    ['&#x41g', 'Ag'],
    ['&#', '&#'],
    ['&#38;#39;', '&#39;'],
    ['&#x1F600;', '\u{1F600}'],
    ['&#0;', '\ufffd'],
    ['&#13;', '\r'],
    ['&#128;', '\u20ac'],
    ['&#x80;', '\u20ac'],
    ['&#x92;', '\u2019'],
    ['&#xD800;', '\ufffd'],
    ['&#x110000;', '\ufffd'],
    ['&#99999999999;', '\ufffd'],
    ['&#1;', ''],
    ['&#xFFFE;', ''],
    ['&#x10FFFF;', ''],
    ['&lt;b&gt;bold&lt;/b&gt; &quot;x&quot; &#39;y&#39;', '<b>bold</b> "x" \'y\''],
  ])('%j -> %j', (input, expected) => {
    expect(htmlUnescape(input)).toBe(expected);
  });

  it('returns text without "&" unchanged', () => {
    const text = 'no entities here';
    expect(htmlUnescape(text)).toBe(text);
  });
});
