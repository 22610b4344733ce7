/**
 * CatLIP's caption → synset miner against values derived by hand from WordNet 3.0's own files
 * (index.noun: a lemma's first sense offset; data.noun at that byte offset: the synset's first
 * lemma, which decides the `lemma.n.01` name check; noun.exc: irregular plurals), one case per
 * quirk of the spec (shared/research/methods.md, CatLIP). Tokenizer expectations are NLTK's
 * documented outputs.
 */
import { describe, expect, it } from 'vitest';
import { SynsetMiner, wordTokenize } from '../../../modules/catlip/labeler.js';
import { cleanCaption, pyUnquote } from '../../../modules/catlip/captionClean.js';
import { treebankTokenize } from '../../../modules/catlip/treebank.js';
import { PunktSentenceSplitter } from '../../../modules/catlip/punkt.js';
import { lemmatizeNoun, sharedNounIndex } from '../../../modules/catlip/wordnet.js';
import { SynsetVocabulary } from '../../../modules/catlip/vocabulary.js';

// Hand-derived (grep index.noun → first offset; data.noun at it → first lemma):
const K = {
  dog: 'n2084071', // dog n … 02084071 …; data: "02084071 05 n 03 dog 0 domestic_dog …"
  cat: 'n2121620',
  box: 'n2883344',
  two: 'n13743269', // "13743269 23 n 04 two 0 2 0 II …"
  three: 'n13744044', // "13744044 23 n 12 three 0 3 0 III …" (so `3` fails the name check)
  goose: 'n1855672', // noun.exc: geese goose
  mouse: 'n2330245', // noun.exc: mice mouse
  wolf: 'n2114100', // noun.exc: wolves wolf
  woman: 'n10787470', // women: rule men→man
  glass: 'n14881303', // glasses: glasses & glass both nouns, shortest wins
  leaf: 'n13152742', // noun.exc: leaves leaf leave → shortest 'leaf'
  church: 'n8082602',
  dish: 'n3206908',
  smith: 'n11306297', // data first lemma "Smith": name() lower-cases it
  state: 'n8654360',
  iron: 'n14642417',
  ore: 'n14688500',
  sofa: 'n4256520',
  pillow: 'n3938244',
  phd: 'n6704115', // index lemma "ph.d."; data first lemma "Ph.D."
  student: 'n10665698',
  gen: 'n6637677',
  can: 'n2946921',
  bed: 'n2818832',
};

const miner = new SynsetMiner();

describe('WordNet 3.0 noun lemmatizer (NLTK WordNetLemmatizer)', () => {
  const wn = sharedNounIndex();
  it('exceptions first, suffix rules, shortest candidate', () => {
    expect(lemmatizeNoun(wn, 'geese')).toBe('goose');
    expect(lemmatizeNoun(wn, 'men')).toBe('men'); // noun.exc "men man": both nouns, tie → first (men)
    expect(lemmatizeNoun(wn, 'cookies')).toBe('cooky'); // ies→y
    expect(lemmatizeNoun(wn, 'glasses')).toBe('glass');
    expect(lemmatizeNoun(wn, 'leaves')).toBe('leaf');
    expect(lemmatizeNoun(wn, 'churches')).toBe('church');
    expect(lemmatizeNoun(wn, 'visited')).toBe('visited'); // no noun rule for -ed
  });
  it('uses WordNet 3.0 offsets, not 3.1', () => {
    expect(wn.firstSenseKey('dog')).toBe(K.dog);
    expect(wn.firstSenseKey('dog')).not.toBe('n2086723'); // WordNet 3.1's dog
  });
});

describe('tokenizer (Punkt + NLTKWordTokenizer)', () => {
  it('treebank tokenizer: NLTK docstring example', () => {
    const s = 'Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.';
    expect(treebankTokenize(s)).toEqual(
      ['Good', 'muffins', 'cost', '$', '3.88', '(', 'roughly', '3,36', 'euros', ')', 'in', 'New', 'York.', 'Please', 'buy', 'me', 'two', 'of', 'them.', 'Thanks', '.'],
    );
  });
  it('word_tokenize: NLTK docstring example (sentence split first)', () => {
    const s = 'Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\n\nThanks.';
    expect(wordTokenize(s)).toEqual(
      ['Good', 'muffins', 'cost', '$', '3.88', 'in', 'New', 'York', '.', 'Please', 'buy', 'me', 'two', 'of', 'them', '.', 'Thanks', '.'],
    );
  });
  it('contractions, quotes, slashes, hyphens', () => {
    expect(wordTokenize("don't cannot it's a 5-year-old tom/jerry")).toEqual(
      ['do', "n't", 'can', 'not', 'it', "'s", 'a', '5-year-old', 'tom/jerry'],
    );
    expect(wordTokenize('"cats" (dogs) #tag @me & co')).toEqual(['``', 'cats', "''", '(', 'dogs', ')', '#', 'tag', '@', 'me', '&', 'co']);
  });
  it('Punkt: abbreviations stay whole mid-text; other periods end sentences', () => {
    const p = new PunktSentenceSplitter();
    expect(p.split('iron ore. gen. smith visited wash. state')).toEqual(['iron ore. gen. smith visited wash. state']);
    expect(p.split('a sofa. a pillow')).toEqual(['a sofa.', 'a pillow']);
    expect(p.split('(a dog.) a cat')).toEqual(['(a dog.)', 'a cat']);
    expect(p.split('dog... cat! sofa? pillow')).toEqual(['dog... cat!', 'sofa?', 'pillow']);
  });
});

describe('caption cleaning (CoreNet caption_preprocessing)', () => {
  it('percent-decoding like urllib.parse.unquote', () => {
    expect(pyUnquote('hot%20dog')).toBe('hot dog');
    expect(pyUnquote('100%zz')).toBe('100%zz');
    expect(pyUnquote('%E2%80%9Cdog%E2%80%9D')).toBe('\u201cdog\u201d');
    expect(pyUnquote('%FFdog')).toBe('\ufffddog');
  });
  it('+, tags without a space left, whitespace, ftfy fixes, lower case', () => {
    expect(cleanCaption('Sofa<br/>Pillow')).toBe('sofapillow');
    expect(cleanCaption('a+cat  on\ta   mat')).toBe('a cat on\ta mat');
    expect(cleanCaption('\n Dog &amp; Cat \n')).toBe('dog & cat');
    expect(cleanCaption('dog &amp; cat <3')).toBe('dog &amp; cat <3'); // a '<' left: no entity decoding
    expect(cleanCaption('dogâ€™s bed')).toBe("dog's bed"); // mojibake repaired, then quotes straightened
    expect(cleanCaption('cafÃ©')).toBe('café');
    expect(cleanCaption('ﬁsh ＤＯＧ')).toBe('fish dog');
  });
});

describe('caption → synset keys (hand-derived from WordNet 3.0 files)', () => {
  const cases: Array<[string, string[], string]> = [
    ['Two dogs and three boxes', [K.two, K.dog, K.three, K.box], 'plurals; number words pass'],
    ['3 dogs', [K.dog], 'digits fail: 3.n.01 is three.n.01'],
    ['geese, mice and wolves', [K.goose, K.mouse, K.wolf], 'irregular plurals from noun.exc'],
    ['men and women', [K.woman], 'men stays men, men.n.01 is work_force.n.01 → dropped; women → woman'],
    ['cookies in glasses', [K.glass], 'cookies → cooky (cookie.n.01) dropped; in = inch.n.01 dropped'],
    ['leaves on churches and dishes', [K.leaf, K.church, K.dish], 'shortest candidate; ches/shes rules'],
    ['a kid with a bike and a photo', [], 'name check: child, motorcycle, photograph, angstrom'],
    ['iron ore. gen. smith visited wash. state', [K.iron, K.smith, K.state], 'abbreviations stay whole and fail WordNet'],
    ['iron ore.', [K.iron, K.ore], 'caption-final period is split off'],
    ['a sofa. a pillow', [K.sofa, K.pillow], 'sentence break splits the period'],
    ['a ph.d. student', [K.phd, K.student], 'ph.d. mid-caption is a WordNet lemma'],
    ['the gen.', [K.gen], 'final abbreviation: period split off at the sentence end'],
    ['Sofa<br/>Pillow', [], 'tag removal leaves no space'],
    ['Sofa<br/> Pillow', [K.sofa, K.pillow], 'tag removal'],
    ['hot%20dog+and%20cat', [K.dog, K.cat], 'percent-escapes and +'],
    ['%E2%80%9Cdog%E2%80%9D', [K.dog], 'escaped curly quotes become `` and \'\''],
    ['%FFdog', [], 'invalid UTF-8 → U+FFFD glued to the word'],
    ['dogâ€™s bed', [K.dog, K.bed], 'mojibake repaired before tokenizing'],
    ['&#100;og', [K.dog], 'numeric entity decoded (no < left)'],
    ['&#100;og <3', [], 'a < left: entities stay, & ; split'],
    ['2 cats and two dogs', [K.cat, K.two, K.dog], 'digits vs number words'],
    ['a t-shirt on a cat/dog', [], 't-shirt.n.01 is jersey.n.01; slashes do not split'],
    ['DOGS... CATS! SOFA?', [K.dog, K.cat, K.sofa], 'lower case; ellipsis, ! and ? split'],
    ['we cannot', [K.can], 'cannot → can not'],
    ["the dog's bed", [K.dog, K.bed], "clitic 's split"],
    ['', [], 'empty caption: all-zero target'],
  ];
  for (const [caption, keys, why] of cases) {
    it(`${JSON.stringify(caption)}: ${why}`, () => {
      expect(miner.keys(caption)).toEqual(keys);
    });
  }

  it('labels: sorted distinct vocabulary indices; unknown keys dropped', () => {
    const vocab = new SynsetVocabulary([K.sofa, K.cat, K.dog, K.two]);
    expect(miner.labels('Two dogs, a cat and a dog on a sofa with iron', vocab)).toEqual([0, 1, 2, 3]);
    expect(miner.labels('iron ore.', vocab)).toEqual([]);
    const t = miner.target('a cat', vocab);
    expect(Array.from(t)).toEqual([0, 1, 0, 0]);
  });

  it('explain says why each token was kept or dropped', () => {
    const vocab = new SynsetVocabulary([K.dog]);
    const e = miner.explain('A photo of dogs and cats', vocab);
    expect(e.cleaned).toBe('a photo of dogs and cats');
    const byTok = Object.fromEntries(e.tokens.map((t) => [t.token, t]));
    expect(byTok.dogs!.kept).toBe(true);
    expect(byTok.dogs!.lemma).toBe('dog');
    expect(byTok.photo!.reason).toContain('photograph.n.01');
    expect(byTok.cats!.reason).toContain('not in the vocabulary');
    expect(byTok.of!.reason).toContain('no WordNet noun');
    expect(e.labels).toEqual([0]);
  });
});
