/**
 * Accuracy comparison (issue 9, "Done when"): the same small ViT CLIP and recipe trained by
 * lightclip and by PyTorch on a real-image caption task, zero-shot top-1 on held-out images,
 * several seeds each.
 *
 * Task: the UCI handwritten-digit scans from Debian's python3-sklearn, built by
 * scripts/parity/digits_task.py (1352 training pairs with five caption lines each, 445
 * held-out images in 10 classes). Recipe (issue 9's): 300 steps of batch 64, AdamW lr 5e-4,
 * wd 0.2, 30 warmup steps + cosine, train-CLIP's RandomResizedCrop (scale 0.75–1, square),
 * one caption line drawn per sample and epoch, reshuffled every epoch, drop_last.
 *
 * lightclip: createClip → ClipWrapper → Trainer.fit over ImageTextFolderDataModule, then
 * ZeroShotEval (the user's path). PyTorch: scripts/parity/torch_accuracy.py, OpenAI's
 * architecture and initialisation, torchvision's RandomResizedCrop on PIL images (written
 * out there, torchvision is not in Debian's python3-torch), open_clip's optimizer and
 * schedule. Both read the same token ids (lightclip's CLIP BPE writes them to tokens.json).
 *
 *   npm run build && node dist/scripts/parity/accuracy.js --data parity_digits --seeds 0,1,2
 *   node dist/scripts/parity/accuracy.js --side torch --seeds 0   # one side only
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../core/backend.js';
import { seedEverything } from '../../core/random.js';
import { Trainer } from '../../core/trainer.js';
import { ZeroShotEval } from '../../callbacks/zeroShot.js';
import { ImageTextFolderDataModule } from '../../datamodules/folder.js';
import { LabelledImageLoader, scanImageFolder } from '../../datamodules/imageFolder.js';
import { classPromptTokens } from '../../eval.js';
import { parseClipConfig } from '../../modules/clip/config.js';
import { createClip, loadClipWeights } from '../../modules/clip/factory.js';
import { writeSafetensors } from '../../core/checkpoint/safetensors.js';
import { ClipTokenizer } from '../../modules/tokenizers/clipTokenizer.js';
import { ClipWrapper } from '../../modules/wrappers/clipWrapper.js';

/** The small ViT CLIP of the comparison (OpenAI's flat config keys). */
export const ACCURACY_MODEL = {
  embed_dim: 64, image_resolution: 32, vision_layers: 3, vision_width: 128, vision_patch_size: 8, vision_heads: 2,
  context_length: 16, vocab_size: 49408, transformer_width: 64, transformer_heads: 2, transformer_layers: 3,
};

/** Zero-shot prompts (averaged per class, as CLIP's prompt ensembling). */
export const ACCURACY_TEMPLATES = ['a photo of the digit {}.', 'a handwritten {}.', 'the number {}, written by hand.'];

export interface AccuracyRecipe {
  steps: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  resizeRatio: number;
}

export const DEFAULT_RECIPE: AccuracyRecipe = { steps: 300, batchSize: 64, lr: 5e-4, warmupSteps: 30, weightDecay: 0.2, resizeRatio: 0.75 };

const here = path.dirname(fileURLToPath(import.meta.url));
/** scripts/parity/ in the source tree (the .py files are not built into dist/). */
const sourceDir = here.includes(`${path.sep}dist${path.sep}`) ? here.replace(`${path.sep}dist${path.sep}`, path.sep) : here;

/** Builds the task with digits_task.py unless `dir/task.json` exists. */
export function ensureTask(dir: string, python: string): void {
  if (existsSync(path.join(dir, 'task.json'))) return;
  const r = spawnSync(python, [path.join(sourceDir, 'digits_task.py'), '--out', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`digits_task.py failed: ${r.stderr || r.error}`);
}

/** Token ids of every training caption line and every class prompt, for the PyTorch side. */
function writeTokens(dir: string, tokenizer: ClipTokenizer, classNames: string[]): string {
  const file = path.join(dir, 'tokens.json');
  const ctx = ACCURACY_MODEL.context_length;
  const tok = (lines: string[]) => {
    const { ids, shape } = tokenizer.tokenize(lines, ctx);
    return Array.from({ length: shape[0]! }, (_, r) => Array.from(ids.subarray(r * ctx, (r + 1) * ctx)));
  };
  const train: Record<string, number[][]> = {};
  const trainDir = path.join(dir, 'train');
  for (const f of readdirSync(trainDir).filter((n) => n.endsWith('.txt')).sort()) {
    const lines = readFileSync(path.join(trainDir, f), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
    train[f.slice(0, -4)] = tok(lines);
  }
  const prompts = classNames.map((c) => tok(ACCURACY_TEMPLATES.map((t) => t.replaceAll('{}', c))));
  writeFileSync(file, JSON.stringify({ train, classes: classNames, prompts }));
  return file;
}

/** One lightclip run; returns zero-shot top-1 on the held-out images. */
export async function trainLightclip(dir: string, seed: number, recipe: AccuracyRecipe, init: { from?: string; save?: string } = {}): Promise<{ top1: number; seconds: number }> {
  const started = performance.now();
  await selectBackend({});
  seedEverything(seed);
  const cfg = parseClipConfig(ACCURACY_MODEL, 'accuracy model');
  const tokenizer = ClipTokenizer.default();
  const scan = await scanImageFolder(path.join(dir, 'test'), { flag: 'accuracy test folder' });
  const zeroShot = new ZeroShotEval({
    dataloader: new LabelledImageLoader(scan.samples, cfg.vision.imageSize, 128),
    classTokens: classPromptTokens(tokenizer, scan.classNames, ACCURACY_TEMPLATES, cfg.text.contextLength),
  });
  const datamodule = new ImageTextFolderDataModule({
    folder: path.join(dir, 'train'), valFraction: 0, batchSize: recipe.batchSize, numWorkers: 1,
    imageSize: cfg.vision.imageSize, seed, tokenizer, contextLength: cfg.text.contextLength, resizeRatio: recipe.resizeRatio,
    log: () => {},
  });
  const clip = createClip(cfg);
  if (init.from) await loadClipWeights(clip, init.from);
  if (init.save) await writeSafetensors(init.save, clip.stateDict());
  const model = new ClipWrapper(clip, {
    lr: recipe.lr, warmupSteps: recipe.warmupSteps, weightDecay: recipe.weightDecay, totalSteps: recipe.steps,
  });
  const trainer = new Trainer({
    maxSteps: recipe.steps, maxEpochs: 10_000, logger: false, enableCheckpointing: false, enableProgressBar: false,
    numSanityValSteps: 0, defaultRootDir: path.join(dir, 'runs'),
  });
  await trainer.fit(model, datamodule);
  const res = await zeroShot.evaluate(model);
  model.dispose();
  return { top1: res.top1, seconds: (performance.now() - started) / 1000 };
}

/** One PyTorch run. */
export function trainTorch(dir: string, tokens: string, seed: number, recipe: AccuracyRecipe, python: string, threads: number, extra: string[] = []): { top1: number; seconds: number } {
  const args = [path.join(sourceDir, 'torch_accuracy.py'), '--data', dir, '--tokens', tokens, '--seed', String(seed),
    '--model', JSON.stringify(ACCURACY_MODEL), '--recipe', JSON.stringify(recipe), '--threads', String(threads), ...extra];
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`torch_accuracy.py failed (exit ${r.status}): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { top1: number; seconds: number };
}

async function main(argv: string[]): Promise<void> {
  const arg = (k: string, d: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? argv[i + 1]! : d;
  };
  const python = arg('python', '/usr/bin/python3');
  const dir = path.resolve(arg('data', 'parity_digits'));
  const seeds = arg('seeds', '0,1,2').split(',').map(Number);
  const side = arg('side', 'both');
  // Cross-over diagnostics: each side starts from the other's initial weights of the same seed.
  const swapInit = argv.includes('--swap_init');
  const recipe = { ...DEFAULT_RECIPE, steps: Number(arg('steps', String(DEFAULT_RECIPE.steps))) };
  ensureTask(dir, python);
  const classNames = (JSON.parse(readFileSync(path.join(dir, 'task.json'), 'utf8')) as { classes: string[] }).classes;
  const tokens = writeTokens(dir, ClipTokenizer.default(), classNames);
  if (argv.includes('--init_only')) {
    // Writes each side's initial weights per seed (for --swap_init) without training.
    await selectBackend({});
    for (const seed of seeds) {
      seedEverything(seed);
      const clip = createClip(parseClipConfig(ACCURACY_MODEL, 'accuracy model'));
      await writeSafetensors(path.join(dir, `lightclip_init_${seed}.safetensors`), clip.stateDict());
      clip.dispose();
      trainTorch(dir, tokens, seed, { ...recipe, steps: 0 }, python, 1, ['--save_init', path.join(dir, `torch_init_${seed}.safetensors`)]);
    }
    return;
  }
  const results: Record<string, number[]> = { lightclip: [], pytorch: [] };
  for (const seed of seeds) {
    if (side !== 'torch') {
      const r = await trainLightclip(dir, seed, recipe, swapInit ? { from: path.join(dir, `torch_init_${seed}.safetensors`) } : { save: path.join(dir, `lightclip_init_${seed}.safetensors`) });
      results.lightclip!.push(r.top1);
      console.log(`lightclip seed ${seed}: zero-shot top-1 ${(100 * r.top1).toFixed(2)}% (${r.seconds.toFixed(0)} s)`);
    }
    if (side !== 'lightclip') {
      const initArgs = swapInit ? ['--init', path.join(dir, `lightclip_init_${seed}.safetensors`)] : ['--save_init', path.join(dir, `torch_init_${seed}.safetensors`)];
      const r = trainTorch(dir, tokens, seed, recipe, python, Number(arg('threads', '2')), initArgs);
      results.pytorch!.push(r.top1);
      console.log(`pytorch   seed ${seed}: zero-shot top-1 ${(100 * r.top1).toFixed(2)}% (${r.seconds.toFixed(0)} s)`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const [k, v] of Object.entries(results)) if (v.length) console.log(`${k.padEnd(9)} mean top-1 ${(100 * mean(v)).toFixed(2)}% over ${v.length} seeds: ${v.map((x) => (100 * x).toFixed(2)).join(', ')}`);
  if (results.lightclip!.length && results.pytorch!.length) {
    console.log(`difference (lightclip − pytorch): ${(100 * (mean(results.lightclip!) - mean(results.pytorch!))).toFixed(2)} points`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exitCode = 2;
  });
}
