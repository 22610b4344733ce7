/**
 * CatLIP's caption → synset labels, as CoreNet's `wordnet_tagged_classification` mines them:
 * clean the caption (captionClean.ts), split it into sentences (Punkt) and words (Treebank),
 * lemmatize every token as a noun (part-of-speech tags are computed by CoreNet but never read),
 * keep `lemma.n.01` only when that is the synset's canonical name, map its `n<offset>` key
 * through the vocabulary. Tokens repeat across captions, so token → key is memoized
 * (bounded), which is what makes the miner fast enough to run inside decode workers.
 */

import { cleanCaption } from './captionClean.js';
import { PunktSentenceSplitter } from './punkt.js';
import { treebankTokenize } from './treebank.js';
import { lemmatizeNoun, sharedNounIndex, type WordNetNounIndex } from './wordnet.js';

export interface TokenExplanation {
  token: string;
  lemma: string;
  synset: string | null;
  key: string | null;
  index: number | null;
  kept: boolean;
  reason: string;
}

export interface CaptionExplanation {
  caption: string;
  cleaned: string;
  sentences: string[];
  tokens: TokenExplanation[];
  labels: number[];
}

/** word_tokenize(cleaned): Punkt sentences, then the Treebank tokenizer on each. */
export function wordTokenize(text: string, splitter: PunktSentenceSplitter = defaultSplitter): string[] {
  const out: string[] = [];
  for (const s of splitter.split(text)) for (const t of treebankTokenize(s)) out.push(t);
  return out;
}

const defaultSplitter = new PunktSentenceSplitter();

export class SynsetMiner {
  private readonly cache = new Map<string, string>();
  private readonly maxCache: number;

  constructor(
    readonly wordnet: WordNetNounIndex = sharedNounIndex(),
    readonly splitter: PunktSentenceSplitter = defaultSplitter,
    options: { maxCache?: number } = {},
  ) {
    this.maxCache = options.maxCache ?? 1 << 20;
  }

  /** `n<offset>` for one token, or '' when CoreNet drops it. */
  tokenKey(token: string): string {
    let k = this.cache.get(token);
    if (k !== undefined) return k;
    const lemma = lemmatizeNoun(this.wordnet, token);
    k = this.wordnet.firstSenseKey(lemma) ?? '';
    if (this.cache.size >= this.maxCache) this.cache.clear();
    this.cache.set(token, k);
    return k;
  }

  /** Synset keys of a caption, in token order, duplicates kept. */
  keys(caption: string): string[] {
    const out: string[] = [];
    for (const tok of wordTokenize(cleanCaption(caption), this.splitter)) {
      const k = this.tokenKey(tok);
      if (k) out.push(k);
    }
    return out;
  }

  explain(caption: string, vocab?: Vocabulary): CaptionExplanation {
    const cleaned = cleanCaption(caption);
    const sentences = this.splitter.split(cleaned);
    const tokens: TokenExplanation[] = [];
    const labels = new Set<number>();
    for (const s of sentences) {
      for (const token of treebankTokenize(s)) {
        const lemma = lemmatizeNoun(this.wordnet, token);
        const synset = this.wordnet.synsetName(lemma) ?? null;
        const key = this.wordnet.firstSenseKey(lemma) ?? null;
        let reason: string;
        let index: number | null = null;
        if (synset === null) reason = `no WordNet noun '${lemma}' (wn.synset('${lemma}.n.01') fails)`;
        else if (key === null) reason = `'${lemma}.n.01' is ${synset}: name differs from '${lemma}.n.01'`;
        else if (!vocab) reason = `synset ${lemma}.n.01 = ${key}`;
        else {
          const i = vocab.indexOf(key);
          if (i === undefined) reason = `${key} (${lemma}.n.01) not in the vocabulary`;
          else {
            index = i;
            labels.add(i);
            reason = `${key} (${lemma}.n.01) → index ${i}`;
          }
        }
        tokens.push({ token, lemma, synset, key, index, kept: index !== null || (!vocab && key !== null), reason });
      }
    }
    return { caption, cleaned, sentences, tokens, labels: [...labels].sort((a, b) => a - b) };
  }

  /** Sorted, distinct vocabulary indices of a caption's target (empty: all-zero target). */
  labels(caption: string, vocab: Vocabulary): number[] {
    const set = new Set<number>();
    for (const k of this.keys(caption)) {
      const i = vocab.indexOf(k);
      if (i !== undefined) set.add(i);
    }
    return [...set].sort((a, b) => a - b);
  }

  /** Dense 0/1 target of length vocab.size. */
  target(caption: string, vocab: Vocabulary, out: Float32Array = new Float32Array(vocab.size)): Float32Array {
    out.fill(0);
    for (const i of this.labels(caption, vocab)) out[i] = 1;
    return out;
  }
}

/** What the miner needs of a vocabulary (vocabulary.ts implements it). */
export interface Vocabulary {
  readonly size: number;
  indexOf(key: string): number | undefined;
}
