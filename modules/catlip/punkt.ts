/**
 * Punkt sentence splitting with NLTK 3.8.1's decision procedure (`PunktSentenceTokenizer`):
 * candidate contexts from the period-context regex, the Punkt word tokenizer, the first pass
 * (sentence-end characters, ellipses, abbreviations) and the second pass (collocations, the
 * orthographic heuristic, initials and ordinals), then boundary realignment.
 *
 * Parameters: the abbreviation list below; collocations, sentence starters and orthographic
 * contexts are empty. CoreNet lower-cases captions before splitting, so the frequent-sentence-
 * starter rule (needs an upper-case next word) never fires; with an empty orthographic table a
 * lower-case word after an initial or a number (`j. smith`, `no. 5`, `room 3. dog`) is judged
 * "not a sentence starter", which is what NLTK's English table says for nearly every word.
 */

/** Abbreviations of NLTK's English Punkt model that matter mid-caption (types without the final period). */
export const ENGLISH_ABBREVIATIONS: ReadonlySet<string> = new Set([
  'a.m', 'p.m', 'a.c', 'a.d', 'b.c', 'c.i.t', 'd.c', 'e.g', 'i.e', 'l.a', 'm.j', 'n.h', 'n.j', 'n.m', 'n.y', 'n.c',
  'n.d', 's.c', 's.d', 'r.i', 'w.va', 'u.k', 'u.n', 'u.s', 'u.s.a', 'u.s.s.r', 'ph.d', 'ala', 'ariz', 'ark', 'aug',
  'bros', 'calif', 'capt', 'cie', 'co', 'col', 'colo', 'conn', 'corp', 'ct', 'dec', 'del', 'dr', 'etc', 'feb', 'fig',
  'fla', 'ft', 'ga', 'gen', 'gov', 'ill', 'inc', 'jan', 'jr', 'kan', 'ky', 'lt', 'ltd', 'maj', 'mass', 'md',
  'messrs', 'mich', 'minn', 'mo', 'mr', 'mrs', 'ms', 'mt', 'neb', 'nev', 'no', 'nos', 'nov', 'oct', 'okla', 'ore',
  'pa', 'pp', 'prof', 'rep', 'rev', 'sen', 'sept', 'sgt', 'sr', 'st', 'tenn', 'tex', 'va', 'vol', 'vs', 'vt',
  'wash', 'wis', 'yr', 'yrs',
]);

const NON_WORD = `[)";}\\]*:@'({\\[!?]`;
const MULTI_CHAR = `(?:-{2,}|\\.{2,}|(?:\\.\\s){2,}\\.)`;
const WORD_START = `[^("\`{\\[:;&#*@)}\\]\\-,]`;
const WORD_RE = new RegExp(
  `${MULTI_CHAR}|(?=${WORD_START})\\S+?(?=\\s|$|${NON_WORD}|${MULTI_CHAR}|,(?=$|\\s|${NON_WORD}|${MULTI_CHAR}))|\\S`,
  'gu',
);
const PERIOD_CONTEXT_RE = new RegExp(`[.?!](?=(?<after>${NON_WORD}|\\s+(?<next>\\S+)))`, 'gu');
const SENT_END_RE = /[.?!]/;
const REALIGN_RE = /["')\]}]+?(?:\s+|(?=--)|$)/myu; // sticky: re.match at the slice start
const NUMERIC_RE = /^-?[.,]?\p{Nd}[\p{Nd},.\-]*\.?$/u;
const INITIAL_RE = /^[\p{L}\p{Nl}\p{No}_]\.$/u;
const ELLIPSIS_RE = /^\.\.+$/;
const PY_WS_RE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

interface Tok {
  tok: string;
  type: string;
  periodFinal: boolean;
  sentbreak: boolean;
  abbr: boolean;
  ellipsis: boolean;
}

function makeTok(tok: string): Tok {
  const lower = tok.toLowerCase();
  return {
    tok,
    type: NUMERIC_RE.test(lower) ? '##number##' : lower,
    periodFinal: tok.endsWith('.'),
    sentbreak: false,
    abbr: false,
    ellipsis: false,
  };
}

const typeNoPeriod = (t: Tok): string => (t.type.length > 1 && t.type.endsWith('.') ? t.type.slice(0, -1) : t.type);
const typeNoSentPeriod = (t: Tok): string => (t.sentbreak ? typeNoPeriod(t) : t.type);
const isUpper = (c: string): boolean => /^\p{Lu}/u.test(c);
const isLower = (c: string): boolean => /^\p{Ll}/u.test(c);

export class PunktSentenceSplitter {
  constructor(
    private readonly abbrevs: ReadonlySet<string> = ENGLISH_ABBREVIATIONS,
    private readonly orthoContext: ReadonlyMap<string, number> = new Map(),
  ) {}

  private wordTokens(text: string): Tok[] {
    const out: Tok[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      for (const m of line.matchAll(WORD_RE)) out.push(makeTok(m[0]));
    }
    return out;
  }

  private firstPass(t: Tok): void {
    const tok = t.tok;
    if (tok === '.' || tok === '?' || tok === '!') t.sentbreak = true;
    else if (ELLIPSIS_RE.test(tok)) t.ellipsis = true;
    else if (t.periodFinal && !tok.endsWith('..')) {
      const base = tok.slice(0, -1).toLowerCase();
      const parts = base.split('-');
      if (this.abbrevs.has(base) || this.abbrevs.has(parts[parts.length - 1]!)) t.abbr = true;
      else t.sentbreak = true;
    }
  }

  private ortho(t: Tok): boolean | 'unknown' {
    if (';:,.!?'.includes(t.tok) && t.tok.length === 1) return false;
    const ctx = this.orthoContext.get(typeNoSentPeriod(t)) ?? 0;
    const LC = (1 << 4) | (1 << 5) | (1 << 6);
    const UC = (1 << 1) | (1 << 2) | (1 << 3);
    if (isUpper(t.tok) && ctx & LC && !(ctx & (1 << 2))) return true;
    if (isLower(t.tok) && (ctx & UC || !(ctx & (1 << 4)))) return false;
    return 'unknown';
  }

  private secondPass(t1: Tok, t2: Tok | undefined): void {
    if (!t2 || !t1.periodFinal) return;
    const typ = typeNoPeriod(t1);
    const isInitial = INITIAL_RE.test(t1.tok);
    if ((t1.abbr || t1.ellipsis) && !isInitial) {
      if (this.ortho(t2) === true) {
        t1.sentbreak = true;
        return;
      }
    }
    if (isInitial || typ === '##number##') {
      const s = this.ortho(t2);
      if (s === false) {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
      }
      const ctx = this.orthoContext.get(typeNoSentPeriod(t2)) ?? 0;
      if (s === 'unknown' && isInitial && isUpper(t2.tok) && !(ctx & ((1 << 4) | (1 << 5) | (1 << 6)))) {
        t1.sentbreak = false;
        t1.abbr = true;
      }
    }
  }

  private containsSentbreak(context: string): boolean {
    const toks = this.wordTokens(context);
    for (const t of toks) this.firstPass(t);
    let found = false;
    for (let i = 0; i < toks.length; i++) {
      // NLTK annotates lazily, pairwise: token i is final once (i, i+1) has been seen.
      this.secondPass(toks[i]!, toks[i + 1]);
      if (found) return true;
      if (toks[i]!.sentbreak) found = true;
    }
    return false;
  }

  private *endContexts(text: string): Generator<{ end: number; nextStart: number | undefined; context: string }> {
    let prevStart = 0;
    let prevStop = 0;
    let prev: RegExpMatchArray | undefined;
    const emit = (m: RegExpMatchArray, start: number, stop: number) => ({
      end: m.index! + 1,
      nextStart: m.groups!.next !== undefined ? m.index! + 1 + m.groups!.after!.length - m.groups!.next.length : undefined,
      context: text.slice(start, stop) + m[0] + m.groups!.after!,
    });
    for (const m of text.matchAll(PERIOD_CONTEXT_RE)) {
      const before = text.slice(prevStop, m.index!);
      let lastWs = 0;
      for (let i = before.length - 1; i >= 0; i--) {
        if (PY_WS_RE.test(before[i]!)) {
          lastWs = i;
          break;
        }
      }
      const wordStart = lastWs ? lastWs + prevStop + 1 : prevStart;
      if (prev && prevStop <= wordStart) yield emit(prev, prevStart, prevStop);
      prev = m;
      prevStart = wordStart;
      prevStop = m.index!;
    }
    if (prev) yield emit(prev, prevStart, prevStop);
  }

  private slices(text: string): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let last = 0;
    for (const c of this.endContexts(text)) {
      if (this.containsSentbreak(c.context)) {
        out.push([last, c.end]);
        last = c.nextStart !== undefined ? c.nextStart : c.end;
      }
    }
    out.push([last, text.trimEnd().length]);
    return out;
  }

  /** `sent_tokenize(text)`: the sentences, boundaries realigned past closing quotes and brackets. */
  split(text: string): string[] {
    // No candidate sentence end: one sentence, trailing whitespace removed (as _slices_from_text does).
    if (!SENT_END_RE.test(text)) {
      const t = text.trimEnd();
      return t.length > 0 ? [t] : [];
    }
    const slices = this.slices(text);
    const out: string[] = [];
    let realign = 0;
    for (let i = 0; i < slices.length; i++) {
      const s1: [number, number] = [slices[i]![0] + realign, slices[i]![1]];
      const s2 = slices[i + 1];
      if (!s2) {
        if (s1[1] > s1[0]) out.push(text.slice(s1[0], s1[1]));
        continue;
      }
      REALIGN_RE.lastIndex = 0;
      const m = REALIGN_RE.exec(text.slice(s2[0], s2[1]));
      if (m) {
        out.push(text.slice(s1[0], s2[0] + m[0].trimEnd().length));
        realign = m[0].length;
      } else {
        realign = 0;
        if (s1[1] > s1[0]) out.push(text.slice(s1[0], s1[1]));
      }
    }
    return out;
  }
}
