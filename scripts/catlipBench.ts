/**
 * Miner throughput: captions/s of CatLIP's caption → synset labeler on one core, on a
 * generated alt-text-like corpus (no caption data ships). Reports cold (empty token cache)
 * and warm passes. Usage: node dist/scripts/catlipBench.js [--captions N] [--json]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SynsetMiner } from '../modules/catlip/labeler.js';
import { SynsetVocabulary } from '../modules/catlip/vocabulary.js';
import { defaultDictDir, sharedNounIndex } from '../modules/catlip/wordnet.js';

/** Deterministic alt-text-like captions over `poolSize` real WordNet noun lemmas. */
export function generateCaptions(n: number, poolSize = 20000, seed = 1): string[] {
  let s = seed >>> 0;
  const rnd = (): number => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const lemmas = readFileSync(join(defaultDictDir(), 'index.noun'), 'latin1')
    .split('\n')
    .filter((l) => l && l[0] !== ' ')
    .map((l) => l.slice(0, l.indexOf(' ')))
    .filter((w) => /^[a-z]+$/.test(w));
  const pool = Array.from({ length: poolSize }, () => lemmas[Math.floor(rnd() * lemmas.length)]!);
  const fn = ['a', 'the', 'of', 'on', 'with', 'and', 'in', 'at', 'for', 'two', 'three', 'some', 'from', 'near', 'by'];
  const adj = ['red', 'big', 'small', 'old', 'new', 'happy', 'wooden', 'blue', 'white', 'vintage', 'modern'];
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  // Zipf-ish: most tokens come from the head of the pool.
  const noun = (): string => {
    const w = pool[Math.floor(pool.length * rnd() ** 3)]!;
    return rnd() < 0.3 ? (w.endsWith('s') || w.endsWith('x') ? `${w}es` : w.endsWith('y') ? `${w.slice(0, -1)}ies` : `${w}s`) : w;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const words: string[] = [];
    const len = 4 + Math.floor(rnd() * 14);
    for (let k = 0; k < len; k++) {
      const r = rnd();
      words.push(r < 0.45 ? noun() : r < 0.6 ? pick(adj) : r < 0.95 ? pick(fn) : String(Math.floor(rnd() * 2020)));
    }
    let c = words.join(' ');
    if (rnd() < 0.5) c = c[0]!.toUpperCase() + c.slice(1);
    const r = rnd();
    if (r < 0.3) c += '.';
    else if (r < 0.35) c = c.replace(' ', '%20');
    else if (r < 0.4) c = `<b>${c}</b> &amp; more`;
    else if (r < 0.45) c += `. ${pick(adj)} ${noun()}, ${noun()}!`;
    out.push(c);
  }
  return out;
}

export function benchMiner(n = 50000): { captions: number; coldPerSecond: number; warmPerSecond: number; loadMs: number; meanLabels: number } {
  const t0 = performance.now();
  sharedNounIndex();
  const loadMs = performance.now() - t0;
  const captions = generateCaptions(n);
  const miner = new SynsetMiner();
  const t1 = performance.now();
  const vocab = SynsetVocabulary.build(captions, miner, 24320);
  const cold = performance.now() - t1;
  const t2 = performance.now();
  let labels = 0;
  for (const c of captions) labels += miner.labels(c, vocab).length;
  const warm = performance.now() - t2;
  return { captions: n, coldPerSecond: n / (cold / 1000), warmPerSecond: n / (warm / 1000), loadMs, meanLabels: labels / n };
}

if (process.argv[1] && /catlipBench\.(js|ts)$/.test(process.argv[1])) {
  const i = process.argv.indexOf('--captions');
  const r = benchMiner(i > 0 ? Number(process.argv[i + 1]) : 50000);
  if (process.argv.includes('--json')) console.log(JSON.stringify(r));
  else
    console.log(
      `CatLIP miner: ${r.captions} captions; cold ${Math.round(r.coldPerSecond)} captions/s, warm ${Math.round(r.warmPerSecond)} captions/s ` +
        `(WordNet index load ${r.loadMs.toFixed(0)} ms, ${r.meanLabels.toFixed(2)} labels/caption)`,
    );
}
