import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { SynsetMiner } from '../../../modules/catlip/labeler.js';
import { SynsetVocabulary, encodeVocabPickle } from '../../../modules/catlip/vocabulary.js';
import { UnsafePickleError } from '../../../modules/weights/unpickler.js';
import { run } from '../../../commands/catlip.js';

const DOG = 'n2084071';
const CAT = 'n2121620';
const SOFA = 'n4256520';
const TWO = 'n13743269';

const python = spawnSync('/usr/bin/python3', ['-c', 'import pickle'], { encoding: 'utf8' }).status === 0 ? '/usr/bin/python3' : null;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'catlip-vocab-'));
}

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const l = vi.spyOn(console, 'log').mockImplementation((s: unknown) => void (out += `${String(s)}\n`));
  const e = vi.spyOn(console, 'error').mockImplementation((s: unknown) => void (err += `${String(s)}\n`));
  try {
    const code = await run(argv);
    return { code, out, err };
  } finally {
    w.mockRestore();
    l.mockRestore();
    e.mockRestore();
  }
}

describe('vocabulary', () => {
  const miner = new SynsetMiner();

  it('build: counts once per caption, orders by count, ties by first appearance', () => {
    const v = SynsetVocabulary.build(['a cat and a cat', 'a dog', 'two sofas', 'a dog on a sofa', 'a cat'], miner);
    // cat: 2 captions (first seen 1st), dog: 2 (2nd), sofa: 2 (4th key seen: two first at 3rd caption), two: 1
    expect(v.keys).toEqual([CAT, DOG, SOFA, TWO]);
    expect(v.counts).toEqual([2, 2, 2, 1]);
    expect(SynsetVocabulary.build(['a cat', 'a dog', 'a dog'], miner, 1).keys).toEqual([DOG]);
  });

  it('written pickle reads back through the restricted unpickler, in order, truncated by size', () => {
    const dir = tmp();
    const keys = Array.from({ length: 2500 }, (_, i) => `n${1000000 + i}`);
    const counts = keys.map((_, i) => (i === 0 ? 3_000_000_000 : 70000 - i));
    new SynsetVocabulary(keys, counts).write(join(dir, 'v.pkl'));
    const back = SynsetVocabulary.read(join(dir, 'v.pkl'));
    expect(back.keys).toEqual(keys);
    expect(back.counts).toEqual(counts);
    const small = SynsetVocabulary.read(join(dir, 'v.pkl'), 10);
    expect(small.size).toBe(10);
    expect(small.indexOf('n1000009')).toBe(9);
    expect(small.indexOf('n1000010')).toBeUndefined();
    expect(() => SynsetVocabulary.read(join(dir, 'v.pkl'), 3000)).toThrow(/fewer than the requested size 3000/);
  });

  it.skipIf(!python)('Python pickle reads the written file with the same keys, counts and order', () => {
    const dir = tmp();
    const keys = [DOG, CAT, 'n123', SOFA];
    new SynsetVocabulary(keys, [500, 300, 300, 1]).write(join(dir, 'v.pkl'));
    const out = execFileSync(python!, ['-c', 'import pickle,sys,json; d=pickle.load(open(sys.argv[1],"rb")); print(json.dumps([type(d).__name__, list(d.items())]))', join(dir, 'v.pkl')], {
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual(['dict', [[DOG, 500], [CAT, 300], ['n123', 300], [SOFA, 1]]]);
  });
  if (!python) console.log('skipped the Python pickle check: /usr/bin/python3 is not available');

  it.skipIf(!python)('reads pickles written by Python (dict and OrderedDict, protocols 2..5)', () => {
    const dir = tmp();
    execFileSync(python!, ['-c', `
import pickle, collections, sys
d = {"${DOG}": 9, "${CAT}": 5, "n7": 5}
for p in (2, 3, 4, 5):
    pickle.dump(d, open(sys.argv[1] + f"/d{p}.pkl", "wb"), protocol=p)
pickle.dump(collections.OrderedDict(d), open(sys.argv[1] + "/od.pkl", "wb"), protocol=2)
`, dir]);
    for (const f of ['d2', 'd3', 'd4', 'd5', 'od']) {
      const v = SynsetVocabulary.read(join(dir, `${f}.pkl`));
      expect(v.keys).toEqual([DOG, CAT, 'n7']);
      expect(v.counts).toEqual([9, 5, 5]);
    }
  });

  it('refuses pickles that name other globals, and non-synset keys', () => {
    const dir = tmp();
    // PROTO 2, GLOBAL 'os\nsystem\n', ... STOP
    writeFileSync(join(dir, 'evil.pkl'), Buffer.from('\x80\x02cos\nsystem\nq\x00.', 'latin1'));
    expect(() => SynsetVocabulary.read(join(dir, 'evil.pkl'))).toThrow(UnsafePickleError);
    writeFileSync(join(dir, 'bad.pkl'), encodeVocabPickle(['dog'], [1]));
    expect(() => SynsetVocabulary.read(join(dir, 'bad.pkl'))).toThrow(/not a WordNet noun key/);
  });
});

describe('lightclip catlip', () => {
  it('vocab --path then labels --json / --explain', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'corpus.txt'), 'a dog on a sofa\ntwo dogs\na cat\n');
    const v = await capture(['vocab', '--path', join(dir, 'corpus.txt'), '--out', join(dir, 'vocab.pkl'), '--size', '24320']);
    expect(v.code).toBe(0);
    expect(v.err).toMatch(/3 captions mined .* 4 synsets written .*fewer than --size 24320/);
    expect(SynsetVocabulary.read(join(dir, 'vocab.pkl')).keys).toEqual([DOG, SOFA, TWO, CAT]);

    writeFileSync(join(dir, 'caps.txt'), 'A cat on a sofa\n\nIron ore.\r\ntwo dogs');
    const l = await capture(['labels', '--vocab', join(dir, 'vocab.pkl'), '--captions', join(dir, 'caps.txt'), '--json']);
    expect(l.code).toBe(0);
    expect(l.out.trimEnd().split('\n')).toEqual(['[1,3]', '[]', '[]', '[0,2]']);

    const e = await capture(['labels', '--vocab', join(dir, 'vocab.pkl'), '--captions', join(dir, 'caps.txt'), '--explain']);
    const rows = e.out.trimEnd().split('\n').map((r) => JSON.parse(r));
    expect(rows).toHaveLength(4);
    expect(rows[0].cleaned).toBe('a cat on a sofa');
    expect(rows[0].tokens.map((t: { token: string }) => t.token)).toEqual(['a', 'cat', 'on', 'a', 'sofa']);
    expect(rows[3].labels).toEqual([0, 2]);
  });

  it('vocab --folder reads same-stem caption files', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'a.png'), Buffer.alloc(8));
    writeFileSync(join(dir, 'data', 'a.txt'), 'a cat\na cat and a dog\n');
    writeFileSync(join(dir, 'data', 'b.png'), Buffer.alloc(8));
    writeFileSync(join(dir, 'data', 'b.txt'), 'a dog\n');
    const r = await capture(['vocab', '--folder', join(dir, 'data'), '--out', join(dir, 'v.pkl')]);
    expect(r.code).toBe(0);
    expect(SynsetVocabulary.read(join(dir, 'v.pkl')).counts).toEqual([2, 2]);
  });

  it('clear errors for bad invocations', async () => {
    expect((await capture(['labels', '--captions', 'x'])).err).toMatch(/needs --vocab/);
    expect((await capture(['vocab', '--out', 'x.pkl'])).err).toMatch(/exactly one of --path, --folder, --train_data/);
    expect((await capture(['frobnicate'])).code).toBe(2);
    const r = await capture(['labels', '--vocab', '/nonexistent/v.pkl', '--captions', 'x']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nonexistent\/v.pkl/);
    expect(readFileSync).toBeDefined();
  });
});
