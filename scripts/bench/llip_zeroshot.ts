/**
 * Zero-shot comparison of CLIP (InfoNCE), CLIP (SigLIP) and Llip (K = 4/8/16, SigLIP) on a
 * small real-image task: the 1,797 8×8 handwritten digits of UCI/scikit-learn (Debian's
 * python3-sklearn ships them as `sklearn/datasets/data/digits.csv.gz`), upscaled to 32×32
 * RGB for the tiny-ViT towers. Captions name the digit in one of several phrasings; 20% of
 * the images (stratified by order) are held out and classified zero-shot from prompts
 * ("a photo of the number seven."...) that partly differ from the training captions.
 * Every model trains from scratch with the same seed, batch, steps and learning rate.
 *
 *   node dist/scripts/bench/llip_zeroshot.js [--epochs 20] [--batch 64] [--out results.json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { selectBackend } from '../../core/backend.js';
import { parseCliFlags } from '../../core/config.js';
import { ArrayDataLoader } from '../../core/data.js';
import { seedEverything } from '../../core/random.js';
import { tf, type Tensor } from '../../core/tf.js';
import { Trainer } from '../../core/trainer.js';
import type { LightningModule } from '../../core/module.js';
import { zeroShotAccuracy, zeroShotClassifier, type ZeroShotEncoders } from '../../callbacks/zeroShot.js';
import { resolveModelConfig } from '../../modules/clip/config.js';
import { createClip } from '../../modules/clip/factory.js';
import { ClipTokenizer } from '../../modules/tokenizers/clipTokenizer.js';
import { ClipWrapper } from '../../modules/wrappers/clipWrapper.js';
import { LlipWrapper } from '../../modules/llip/wrapper.js';

const DIGITS = '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz';
const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const TRAIN_CAPTIONS = ['{}', 'a handwritten {}', 'the digit {}', 'a {} written by hand', 'a scan of a handwritten {}.'];
const EVAL_TEMPLATES = ['a photo of the number {}.', 'a handwritten {}.', 'the digit {}'];

/** Images `[N, 32, 32, 3]` in CLIP-normalised units and labels. */
function loadDigits(size: number): { images: Float32Array; labels: number[] } {
  const rows = gunzipSync(readFileSync(DIGITS)).toString('utf8').trim().split('\n');
  const images = new Float32Array(rows.length * size * size * 3);
  const labels: number[] = [];
  const f = size / 8;
  rows.forEach((line, n) => {
    const v = line.split(',').map(Number);
    labels.push(v[64]!);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        // Bilinear upsampling of the 8×8 grid (pixel centres), ink dark on white as on paper.
        const sy = Math.min(7, Math.max(0, (y + 0.5) / f - 0.5));
        const sx = Math.min(7, Math.max(0, (x + 0.5) / f - 0.5));
        const y0 = Math.floor(sy), x0 = Math.floor(sx);
        const y1 = Math.min(7, y0 + 1), x1 = Math.min(7, x0 + 1);
        const dy = sy - y0, dx = sx - x0;
        const at = (yy: number, xx: number) => v[yy * 8 + xx]! / 16;
        const ink = (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x1)) + dy * ((1 - dx) * at(y1, x0) + dx * at(y1, x1));
        const p = 1 - ink;
        const o = ((n * size + y) * size + x) * 3;
        images[o] = (p - 0.48145466) / 0.26862954;
        images[o + 1] = (p - 0.4578275) / 0.26130258;
        images[o + 2] = (p - 0.40821073) / 0.27577711;
      }
    }
  });
  return { images, labels };
}

interface RunResult {
  name: string;
  top1: number;
  top5: number;
  steps: number;
  pairsPerSecond: number;
  seconds: number;
  finalLoss: number;
}

async function main(argv: string[]): Promise<void> {
  const flags = parseCliFlags(argv);
  const epochs = Number(flags.epochs ?? 20);
  const batch = Number(flags.batch ?? 64);
  const only = flags.only ? String(flags.only).split(',') : null;
  const backend = await selectBackend({});
  const cfg = resolveModelConfig('tiny-ViT');
  const size = cfg.vision.imageSize;
  const ctx = cfg.text.contextLength;
  const { images, labels } = loadDigits(size);
  const n = labels.length;
  const isTest = (i: number) => i % 5 === 4;
  const trainIdx = [...Array(n).keys()].filter((i) => !isTest(i));
  const testIdx = [...Array(n).keys()].filter(isTest);
  const px = size * size * 3;
  const pick = (idx: number[]) => {
    const out = new Float32Array(idx.length * px);
    idx.forEach((i, k) => out.set(images.subarray(i * px, (i + 1) * px), k * px));
    return tf.tensor4d(out, [idx.length, size, size, 3]);
  };
  const tokenizer = ClipTokenizer.default();
  seedEverything(0);
  const captions = trainIdx.map((i, k) => TRAIN_CAPTIONS[(k * 7 + i) % TRAIN_CAPTIONS.length]!.replace('{}', NAMES[labels[i]!]!));
  const trainData = { images: pick(trainIdx), texts: tokenizer.tokenizeToTensor(captions, ctx) };
  const testData = { images: pick(testIdx), labels: tf.tensor1d(testIdx.map((i) => labels[i]!), 'int32') };
  const classTokens = NAMES.map((name) => tokenizer.tokenizeToTensor(EVAL_TEMPLATES.map((t) => t.replace('{}', name)), ctx));

  const common = { lr: 2e-3, warmupSteps: 30, weightDecay: 0.1 };
  const runs: Array<{ name: string; build: () => LightningModule & { model: ZeroShotEncoders } }> = [
    { name: 'CLIP InfoNCE', build: () => new ClipWrapper(createClip(cfg), common) },
    { name: 'CLIP SigLIP', build: () => new ClipWrapper(createClip(cfg), { ...common, loss: 'siglip' }) },
    ...[4, 8, 16].map((k) => ({ name: `Llip K=${k}`, build: () => new LlipWrapper({ modelName: cfg, numMixtureTokens: k, ...common }) })),
  ];
  const results: RunResult[] = [];
  for (const run of runs) {
    if (only && !only.some((o) => run.name.includes(o))) continue;
    seedEverything(1);
    const model = run.build();
    const loader = new ArrayDataLoader(trainData, { batchSize: batch, shuffle: true, seed: 2, dropLast: true });
    const trainer = new Trainer({ maxEpochs: epochs, logger: false, enableCheckpointing: false, enableProgressBar: false, numSanityValSteps: 0 });
    const t0 = performance.now();
    await trainer.fit(model, { train: loader });
    const seconds = (performance.now() - t0) / 1000;
    model.eval();
    const classifier = zeroShotClassifier(model.model, classTokens);
    const zs = await zeroShotAccuracy(model.model, classifier, new ArrayDataLoader(testData, { batchSize: 128 }) as never);
    classifier.dispose();
    const r: RunResult = {
      name: run.name,
      top1: zs.top1,
      top5: zs.top5,
      steps: trainer.globalStep,
      seconds,
      pairsPerSecond: (trainer.globalStep * batch) / seconds,
      finalLoss: Number(trainer.callbackMetrics.train_loss),
    };
    results.push(r);
    console.log(`${r.name.padEnd(13)} top-1 ${(100 * r.top1).toFixed(1).padStart(5)}%  top-5 ${(100 * r.top5).toFixed(1).padStart(5)}%  ${r.steps} steps in ${r.seconds.toFixed(0)} s = ${r.pairsPerSecond.toFixed(1)} pairs/s  final loss ${r.finalLoss.toFixed(3)}`);
    (model as unknown as { dispose?: () => void }).dispose?.();
  }
  const clip = results.find((r) => r.name === 'CLIP SigLIP') ?? results[0];
  if (clip) for (const r of results) if (r.name.startsWith('Llip')) console.log(`${r.name}: time per pair ${(clip.pairsPerSecond / r.pairsPerSecond).toFixed(2)}× CLIP SigLIP's`);
  const out = { task: 'sklearn digits 8x8 → 32x32, 1438 train / 359 held-out, 10 classes', backend, epochs, batch, results };
  if (flags.out) writeFileSync(String(flags.out), JSON.stringify(out, null, 2));
  tf.dispose([trainData.images, trainData.texts, testData.images, testData.labels, ...classTokens] as Tensor[]);
}

await main(process.argv.slice(2));
