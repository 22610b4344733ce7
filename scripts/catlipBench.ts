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

if (process.argv[1] && /catlipBench\.(js|ts)$/.test(process.argv[1]) && !process.argv.includes('--steps')) {
  const i = process.argv.indexOf('--captions');
  const r = benchMiner(i > 0 ? Number(process.argv[i + 1]) : 50000);
  if (process.argv.includes('--json')) console.log(JSON.stringify(r));
  else
    console.log(
      `CatLIP miner: ${r.captions} captions; cold ${Math.round(r.coldPerSecond)} captions/s, warm ${Math.round(r.warmPerSecond)} captions/s ` +
        `(WordNet index load ${r.loadMs.toFixed(0)} ms, ${r.meanLabels.toFixed(2)} labels/caption)`,
    );
}

/**
 * Training-step time of CatLIP vs CLIP on the same ViT image tower (`modelName`), batch `batch`:
 * forward + backward + AdamW step, mean of `steps` after one warm-up step. CatLIP has no text
 * tower; its head is a Linear over `vocabSize` synsets.
 */
export async function benchStepTimes(modelName = 'ViT-B/32', batch = 8, steps = 3, vocabSize = 24320): Promise<{ modelName: string; batch: number; clipMs: number; catlipMs: number; ratio: number; backend: string }> {
  const { selectBackend } = await import('../core/backend.js');
  const { tf } = await import('../core/tf.js');
  const { createClip } = await import('../modules/clip/factory.js');
  const { resolveModelConfig } = await import('../modules/clip/config.js');
  const { ClipWrapper } = await import('../modules/wrappers/clipWrapper.js');
  const { CatlipModule } = await import('../modules/catlip/model.js');
  const { tapeBackward } = await import('../core/loops/optimization.js');
  const sel = await selectBackend({ quiet: true });
  const cfg = resolveModelConfig(modelName);
  const size = cfg.vision.imageSize;
  const images = tf.randomUniform([batch, size, size, 3]);
  const texts = tf.tensor2d(Array.from({ length: batch * cfg.text.contextLength }, (_, i) => (i % cfg.text.contextLength === 5 ? 49407 : 300 + (i % 97))), [batch, cfg.text.contextLength], 'int32');
  const time = async (step: () => Promise<void>): Promise<number> => {
    await step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    return (performance.now() - t0) / steps;
  };
  const clip = new ClipWrapper(createClip(cfg), { totalSteps: 100, warmupSteps: 1 });
  const clipOpt = (clip.configureOptimizers() as unknown as { optimizer: { zeroGrad(): void; step(): void } }).optimizer;
  const clipMs = await time(async () => {
    clipOpt.zeroGrad();
    const { loss, logits } = await clip.computeGradients({ images, texts });
    clipOpt.step();
    tf.dispose([loss, logits]);
  });
  clip.dispose?.();
  const keys = Array.from({ length: vocabSize }, (_, i) => `n${i + 1}`);
  const catlip = new CatlipModule({ vocab: new SynsetVocabulary(keys), modelName, totalSteps: 100, warmupSteps: 1 });
  const catOpt = (catlip.configureOptimizers() as unknown as { optimizer: { zeroGrad(): void; step(): void } }).optimizer;
  const captions = Array.from({ length: batch }, (_, i) => `a photo of ${i % 2 ? 'two dogs' : 'a cat'} on a sofa`);
  const catlipMs = await time(async () => {
    catOpt.zeroGrad();
    const loss = tapeBackward(catlip, () => catlip.trainingStepLoss({ images, captions }));
    catOpt.step();
    loss?.dispose();
  });
  tf.dispose([images, texts]);
  return { modelName, batch, clipMs, catlipMs, ratio: clipMs / catlipMs, backend: String((sel as { name?: string }).name ?? tf.getBackend()) };
}

if (process.argv[1] && /catlipBench\.(js|ts)$/.test(process.argv[1]) && process.argv.includes('--steps')) {
  const model = process.argv[process.argv.indexOf('--steps') + 1] ?? 'ViT-B/32';
  void benchStepTimes(model).then((r) => console.log(JSON.stringify(r)));
}
