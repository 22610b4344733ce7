#!/usr/bin/env node
/**
 * `eval.ts`: evaluation CLIs.
 *
 *   node dist/eval.js zeroshot --weights W.safetensors --model_name ViT-B/32 --data DIR
 *   node dist/eval.js embed --weights W --model_name M --images DIR --texts FILE --out OUT.safetensors
 *
 * `--weights` takes a plain safetensors state dict with OpenAI/open_clip names, or a
 * lightclip `.ckpt` (its `state_dict.model.` prefix is stripped).
 */
import 'reflect-metadata';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IsIn, IsInt, IsOptional, IsString, Min } from 'class-validator';
import { tf, type Tensor } from './core/tf.js';
import { selectBackend } from './core/backend.js';
import { writeSafetensors } from './core/checkpoint/safetensors.js';
import { Describe, renderConfigHelp, resolveConfig } from './core/config.js';
import { runIfMain } from './core/cli.js';
import { MisconfigurationError } from './core/errors.js';
import * as F from './core/nn/functional.js';
import { assetPath } from './core/paths.js';
import { ZeroShotEval, zeroShotAccuracy, zeroShotClassifier, type TopKResult } from './callbacks/zeroShot.js';
import { LabelledImageLoader, scanImageFolder } from './datamodules/imageFolder.js';
import { clipEvalTransform } from './datamodules/transforms.js';
import { resolveModelConfig } from './modules/clip/config.js';
import { createClip, loadClipWeights } from './modules/clip/factory.js';
import type { CLIP } from './modules/clip/model.js';
import { ClipTokenizer } from './modules/tokenizers/clipTokenizer.js';
import { corenetZeroShotFromFile } from './modules/corenet/zeroshot.js';

/** Reads a JSON file, naming the flag in the error. */
async function readJson(file: string, flag: string): Promise<unknown> {
  const text = await fs.readFile(file, 'utf8').catch(() => {
    throw new MisconfigurationError(`\`${flag}\`: cannot read ${JSON.stringify(file)}.`);
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MisconfigurationError(`\`${flag}\`: ${JSON.stringify(file)} is not valid JSON (${(err as Error).message}).`);
  }
}

/** Class names from a JSON list/object or `{classnames: [...]}` (the shipped ImageNet file's shape). */
async function loadClassNames(file: string | undefined): Promise<string[] | Record<string, string> | undefined> {
  if (!file) return undefined;
  const raw = await readJson(file, '--class_names');
  const v = raw && typeof raw === 'object' && 'classnames' in raw ? (raw as { classnames: unknown }).classnames : raw;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  if (v && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string')) return v as Record<string, string>;
  throw new MisconfigurationError(`\`--class_names\`: ${JSON.stringify(file)} must hold a list of names or an object {folder: name}.`);
}

/** Prompt templates (`{}` = class name); default: the 80 OpenAI ImageNet templates. */
export async function loadTemplates(file?: string): Promise<string[]> {
  const raw = await readJson(file ?? assetPath('zeroshot', 'imagenet_templates.json'), '--templates');
  const v = raw && typeof raw === 'object' && 'templates' in raw ? (raw as { templates: unknown }).templates : raw;
  if (!Array.isArray(v) || v.length === 0 || !v.every((t) => typeof t === 'string' && t.includes('{}'))) {
    throw new MisconfigurationError('`--templates` must be a JSON list of strings each containing `{}` (or `{templates: [...]}`).');
  }
  return v as string[];
}

/** Tokenised prompts per class, `[templates, contextLength]` each. */
export function classPromptTokens(tokenizer: ClipTokenizer, classNames: readonly string[], templates: readonly string[], contextLength: number): Tensor[] {
  return classNames.map((name) => tokenizer.tokenizeToTensor(templates.map((t) => t.replaceAll('{}', name)), contextLength));
}

/** Builds a ZeroShotEval callback over an ImageNet-style folder (used by train.ts `--zeroshot_data`). */
export async function buildZeroShotCallback(o: {
  data: string;
  classNames?: string;
  templates?: string;
  tokenizer: ClipTokenizer;
  contextLength: number;
  imageSize: number;
  batchSize: number;
}): Promise<ZeroShotEval> {
  const scan = await scanImageFolder(o.data, { flag: '--zeroshot_data', classNames: await loadClassNames(o.classNames) });
  const templates = await loadTemplates(o.templates);
  return new ZeroShotEval({
    dataloader: new LabelledImageLoader(scan.samples, o.imageSize, o.batchSize),
    classTokens: classPromptTokens(o.tokenizer, scan.classNames, templates, o.contextLength),
  });
}

/** Loads `--weights` into `model`: a safetensors state dict or a lightclip `.ckpt` (prefix detected). */
export async function loadWeights(model: CLIP, file: string): Promise<void> {
  if (!existsSync(file)) throw new MisconfigurationError(`\`--weights\`: ${JSON.stringify(file)} does not exist.`);
  await loadClipWeights(model, file);
}

class ZeroShotConfig {
  @Describe('weights: safetensors state dict or lightclip .ckpt') @IsString() weights = '';
  @Describe('model name or JSON config path') @IsString() model_name = 'ViT-B/32';
  @Describe('ImageNet-style folder: one subfolder per class') @IsString() data = '';
  @Describe('JSON class names (list aligned with sorted folders, or {folder: name})') @IsOptional() @IsString() class_names?: string;
  @Describe('JSON prompt templates (default: 80 OpenAI templates)') @IsOptional() @IsString() templates?: string;
  @Describe('images per batch') @IsInt() @Min(1) batch_size = 64;
  @Describe('image size (default: the model resolution)') @IsOptional() @IsInt() @Min(8) image_size?: number;
  @Describe('auto | cpu | gpu') @IsIn(['auto', 'cpu', 'gpu']) accelerator: 'auto' | 'cpu' | 'gpu' = 'auto';
}

class EmbedConfig {
  @Describe('weights: safetensors state dict or lightclip .ckpt') @IsString() weights = '';
  @Describe('model name or JSON config path') @IsString() model_name = 'ViT-B/32';
  @Describe('folder of images (embedded in file-name order)') @IsString() images = '';
  @Describe('text file, one caption per line') @IsString() texts = '';
  @Describe('output safetensors file (tensors `image` and `text`)') @IsString() out = '';
  @Describe('images per batch') @IsInt() @Min(1) batch_size = 64;
  @Describe('auto | cpu | gpu') @IsIn(['auto', 'cpu', 'gpu']) accelerator: 'auto' | 'cpu' | 'gpu' = 'auto';
}

function required(value: string, flag: string, what: string): string {
  if (!value) throw new MisconfigurationError(`\`${flag}\` is required: ${what}.`);
  return value;
}

/** `eval.ts zeroshot`: prints and returns top-1/top-5. */
export async function zeroshot(argv: readonly string[]): Promise<TopKResult | null> {
  const r = resolveConfig(ZeroShotConfig, argv);
  if (r.help) return void console.log(renderConfigHelp(ZeroShotConfig, { usage: 'node dist/eval.js zeroshot --weights W --model_name M --data DIR' })), null;
  const c = r.config;
  if (c.model_name.startsWith('corenet/')) {
    // CoreNet CLIP: a `.pt` with CoreNet's names, CoreNet's zero-shot procedure (modules/corenet/zeroshot.ts).
    await selectBackend({ accelerator: c.accelerator });
    const scan = await scanImageFolder(required(c.data, '--data', 'an ImageNet-style folder'), { classNames: await loadClassNames(c.class_names) });
    const result = await corenetZeroShotFromFile(c.model_name, required(c.weights, '--weights', 'a CoreNet .pt state dict'), { samples: scan.samples, classNames: scan.classNames, templates: await loadTemplates(c.templates), tokenizer: ClipTokenizer.default(), batchSize: c.batch_size });
    console.log(`zero-shot (CoreNet procedure) on ${result.count} images, ${scan.classNames.length} classes: top-1 ${(100 * result.top1).toFixed(2)}%  top-5 ${(100 * result.top5).toFixed(2)}%`);
    return result;
  }
  const cfg = resolveModelConfig(c.model_name);
  const size = c.image_size ?? cfg.vision.imageSize;
  await selectBackend({ accelerator: c.accelerator });
  const scan = await scanImageFolder(required(c.data, '--data', 'an ImageNet-style folder'), { classNames: await loadClassNames(c.class_names) });
  const model = createClip(cfg, { imageSize: size }).eval();
  await loadWeights(model, required(c.weights, '--weights', 'a safetensors or .ckpt file'));
  const tokens = classPromptTokens(ClipTokenizer.default(), scan.classNames, await loadTemplates(c.templates), cfg.text.contextLength);
  const classifier = zeroShotClassifier(model, tokens);
  tf.dispose(tokens);
  const loader = new LabelledImageLoader(scan.samples, size, c.batch_size);
  const result = await zeroShotAccuracy(model, classifier, loader);
  classifier.dispose();
  console.log(`zero-shot on ${result.count} images, ${scan.classNames.length} classes: top-1 ${(100 * result.top1).toFixed(2)}%  top-5 ${(100 * result.top5).toFixed(2)}%`);
  if (loader.skipped) console.log(`skipped ${loader.skipped} unreadable image(s)`);
  return result;
}

/** `eval.ts embed`: writes L2-normalised image and text features as safetensors. */
export async function embed(argv: readonly string[]): Promise<{ image: number[]; text: number[] } | null> {
  const r = resolveConfig(EmbedConfig, argv);
  if (r.help) return void console.log(renderConfigHelp(EmbedConfig, { usage: 'node dist/eval.js embed --weights W --model_name M --images DIR --texts FILE --out OUT.safetensors' })), null;
  const c = r.config;
  const cfg = resolveModelConfig(c.model_name);
  await selectBackend({ accelerator: c.accelerator });
  const dir = required(c.images, '--images', 'a folder of images');
  const files = (await fs.readdir(dir).catch(() => {
    throw new MisconfigurationError(`\`--images\`: cannot read folder ${JSON.stringify(dir)}.`);
  }))
    .filter((f) => /\.(png|jpe?g|bmp|webp|gif|tiff?)$/i.test(f))
    .sort();
  const lines = (await fs.readFile(required(c.texts, '--texts', 'a text file, one caption per line'), 'utf8').catch(() => {
    throw new MisconfigurationError(`\`--texts\`: cannot read ${JSON.stringify(c.texts)}.`);
  }))
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  const model = createClip(cfg).eval();
  await loadWeights(model, required(c.weights, '--weights', 'a safetensors or .ckpt file'));
  const size = cfg.vision.imageSize;
  const transform = clipEvalTransform(size);
  const imageParts: Tensor[] = [];
  for (let i = 0; i < files.length; i += c.batch_size) {
    const px = await Promise.all(files.slice(i, i + c.batch_size).map((f) => transform.apply(path.join(dir, f))));
    const batch = tf.tensor4d(concat(px), [px.length, size, size, 3]);
    imageParts.push(tf.tidy(() => F.normalize(model.encodeImage(batch))));
    batch.dispose();
  }
  const tokenizer = ClipTokenizer.default();
  const textParts: Tensor[] = [];
  for (let i = 0; i < lines.length; i += c.batch_size) {
    const t = tokenizer.tokenizeToTensor(lines.slice(i, i + c.batch_size), cfg.text.contextLength);
    textParts.push(tf.tidy(() => F.normalize(model.encodeText(t))));
    t.dispose();
  }
  const image = imageParts.length ? tf.concat(imageParts) : tf.zeros([0, cfg.embedDim]);
  const text = textParts.length ? tf.concat(textParts) : tf.zeros([0, cfg.embedDim]);
  await writeSafetensors(required(c.out, '--out', 'the output .safetensors path'), { image, text }, { images: JSON.stringify(files), model_name: c.model_name });
  console.log(`wrote ${files.length} image and ${lines.length} text embeddings (dim ${cfg.embedDim}) to ${c.out}`);
  const out = { image: image.shape, text: text.shape };
  tf.dispose([image, text, ...imageParts, ...textParts]);
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Dispatches `zeroshot` / `embed`. */
export async function main(argv: readonly string[]): Promise<unknown> {
  const [command, ...rest] = argv;
  if (command === 'zeroshot') return zeroshot(rest);
  if (command === 'embed') return embed(rest);
  const usage = 'usage: node dist/eval.js <zeroshot|embed> [--help] [options]';
  if (command === undefined || command === '--help' || command === '-h') return void console.log(usage), null;
  throw new MisconfigurationError(`Unknown command ${JSON.stringify(command)}. ${usage}`);
}

runIfMain(import.meta.url, main);
