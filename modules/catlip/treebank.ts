/**
 * NLTK 3.8.1's `NLTKWordTokenizer` (the improved Treebank tokenizer that `word_tokenize` runs on
 * each Punkt sentence): starting quotes, punctuation, brackets, double dashes, ending quotes and
 * the MacIntyre contractions, as ordered regex substitutions, then a whitespace split. A period
 * is split off only at the end of the sentence; `/`, `-` and `…` never split.
 * Python's Unicode `\w`, `\d` and `\b` are spelt out with Unicode properties.
 */

const W = '[\\p{L}\\p{N}_]';
const B_START = `(?<!${W})(?=${W})`; // \b before a word
const B_END = `(?<=${W})(?!${W})`; // \b after a word
const u = (src: string, flags = ''): RegExp => new RegExp(src, `gu${flags}`);

/** A substitution, run only when the text contains one of `gate`'s characters (or always if empty). */
type Rule = readonly [RegExp, string, string?];

const STARTING_QUOTES: Rule[] = [
  [u('([«“‘„]|[`]+)'), ' $1 ', '«“‘„`'],
  [u('^"'), '``', '"'],
  [u('(``)'), ' $1 ', '`'],
  [u(`([ (\\[{<])("|'{2})`), '$1 `` ', `"'`],
  [u(`(')(?!re|ve|ll|m|t|s|d|n)(${W})(?!${W})`, 'i'), '$1 $2', "'"],
];

const PUNCTUATION: Rule[] = [
  [u(`([^.])(\\.)([\\])}>"'»”’ ]*)\\s*$`), '$1 $2 $3 ', '.'],
  [u('([:,])([^\\p{Nd}])'), ' $1 $2', ':,'],
  [u('([:,])$'), ' $1 ', ':,'],
  [u('\\.{2,}'), ' $& ', '.'],
  [u('[;@#$%&]'), ' $& ', ';@#$%&'],
  [u(`([^.])(\\.)([\\])}>"']*)\\s*$`), '$1 $2$3 ', '.'],
  [u('[?!]'), ' $& ', '?!'],
  [u(`([^'])' `), "$1 ' ", "'"],
  [u('[*]'), ' $& ', '*'],
];

const PARENS: Rule = [u('[\\]\\[(){}<>]'), ' $& '];
const DOUBLE_DASHES: Rule = [u('--'), ' -- '];

const ENDING_QUOTES: Rule[] = [
  [u('([»”’])'), ' $1 ', '»”’'],
  [u("''"), " '' ", "'"],
  [u('"'), " '' ", '"'],
  [u(`([^' ])('[sS]|'[mM]|'[dD]|') `), '$1 $2 ', "'"],
  [u(`([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) `), '$1 $2 ', "'"],
];

const CONTRACTIONS: RegExp[] = [
  u(`${B_START}(can)(not)${B_END}`, 'i'),
  u(`${B_START}(d)('ye)${B_END}`, 'i'),
  u(`${B_START}(gim)(me)${B_END}`, 'i'),
  u(`${B_START}(gon)(na)${B_END}`, 'i'),
  u(`${B_START}(got)(ta)${B_END}`, 'i'),
  u(`${B_START}(lem)(me)${B_END}`, 'i'),
  u(`${B_START}(more)('n)${B_END}`, 'i'),
  u(`${B_START}(wan)(na)(?=\\s)`, 'i'),
  u(` ('t)(is)${B_END}`, 'i'),
  u(` ('t)(was)${B_END}`, 'i'),
];

const BRACKETS_RE = /[\][(){}<>]/;
const CONTRACTION_GATE_RE = /can|'ye|gim|gon|got|lem|more|wan|'t/i;
function hasAny(text: string, chars: string): boolean {
  for (let i = 0; i < chars.length; i++) if (text.includes(chars[i]!)) return true;
  return false;
}

const PY_SPLIT_RE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** `NLTKWordTokenizer().tokenize(sentence)`. */
export function treebankTokenize(sentence: string): string[] {
  let text = sentence;
  const apply = (rules: readonly Rule[]): void => {
    for (const [re, rep, gate] of rules) if (!gate || hasAny(text, gate)) text = text.replace(re, rep);
  };
  apply(STARTING_QUOTES);
  apply(PUNCTUATION);
  if (BRACKETS_RE.test(text)) text = text.replace(PARENS[0], PARENS[1]);
  if (text.includes('--')) text = text.replace(DOUBLE_DASHES[0], DOUBLE_DASHES[1]);
  text = ` ${text} `;
  apply(ENDING_QUOTES);
  // The contractions all need one of these letter pairs; most captions have none.
  if (CONTRACTION_GATE_RE.test(text)) for (const re of CONTRACTIONS) text = text.replace(re, ' $1 $2 ');
  return text.split(PY_SPLIT_RE).filter((t) => t.length > 0);
}
