#!/usr/bin/env node
/**
 * `eval.ts`: evaluation CLIs.
 *
 *   node dist/eval.js zeroshot --weights W.safetensors --model_name ViT-B/32 --data DIR
 *   node dist/eval.js embed --weights W --model_name M --images DIR --texts FILE --out OUT.safetensors
 *
 * `--weights` takes a plain safetensors state dict with OpenAI/open_clip names, or a
 * lightclip `.ckpt` (its `state_dict.model.` prefix is stripped). A `.ckpt` of a
 * fine-tuning run (`--image_encoder` + `--text_encoder`) is rebuilt from its hparams.
 */
import 'reflect-metadata';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { IsIn, IsInt, IsNumber, IsOptional, IsString, Min } from 'class-validator';
import { tf, type Tensor } from './core/tf.js';
import { selectBackend } from './core/backend.js';
import { writeSafetensors } from './core/checkpoint/safetensors.js';
import { Describe, renderConfigHelp, resolveConfig } from './core/config.js';
import { runIfMain } from './core/cli.js';
import { MisconfigurationError } from './core/errors.js';
import * as F from './core/nn/functional.js';
import { assetPath } from './core/paths.js';
import { ZeroShotEval, zeroShotAccuracy, zeroShotClassifier, type TopKResult, type ZeroShotEncoders } from './callbacks/zeroShot.js';
import { loadCheckpointFile } from './core/checkpoint/io.js';
import { buildDualEncoder, isFinetuneHparams } from './modules/finetune.js';
import type { TextTokenizer } from './modules/tokenizers/types.js';
import { LabelledImageLoader, scanImageFolder } from './datamodules/imageFolder.js';
import { clipEvalTransform } from './datamodules/transforms.js';
import { resolveModelConfig } from './modules/clip/config.js';
import { createClip, loadClipWeights } from './modules/clip/factory.js';
import type { CLIP } from './modules/clip/model.js';
import { ClipTokenizer } from './modules/tokenizers/clipTokenizer.js';
import { LlipModel } from './modules/llip/model.js';
import { openDeepLakePairs } from './datamodules/deeplake/pairs.js';
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

/** Tokenised prompts per class, `[templates, contextLength]` each (CLIP BPE or a Hugging Face tokenizer). */
export function classPromptTokens(tokenizer: TextTokenizer, classNames: readonly string[], templates: readonly string[], contextLength: number): Tensor[] {
  return classNames.map((name) => tokenIds(tokenizer, templates.map((t) => t.replaceAll('{}', name)), contextLength));
}

function tokenIds(tokenizer: TextTokenizer, texts: string[], contextLength: number): Tensor {
  const { ids, shape } = tokenizer.tokenize(texts, contextLength);
  return tf.tensor2d(ids, shape, 'int32');
}

/** The towers `zeroshot`/`embed` run: a CLIP, or the DualEncoder of a fine-tuned (CustomClipWrapper) `.ckpt`. */
interface EvalModel {
  encoders: ZeroShotEncoders & { eval(): unknown };
  tokenizer: TextTokenizer;
  contextLength: number;
  imageSize: number;
  embedDim: number;
  dispose(): void;
}

/** `--model llip`'s options (the values the checkpoint was trained with). */
interface LlipEvalOptions {
  numMixtureTokens: number;
  temperature?: number;
  heads?: number;
}

/**
 * Builds the model `--weights` holds. A lightclip `.ckpt` whose hparams name an
 * `image_encoder` and a `text_encoder` was written by a fine-tuning run: its DualEncoder
 * is rebuilt from them (`--model_name` does not apply) and loaded from the checkpoint.
 */
async function loadEvalModel(weights: string, modelName: string, imageSize: number | undefined, llip?: LlipEvalOptions): Promise<EvalModel> {
  if (!existsSync(weights)) throw new MisconfigurationError(`\`--weights\`: ${JSON.stringify(weights)} does not exist.`);
  if (weights.endsWith('.ckpt')) {
    const ckpt = await loadCheckpointFile(weights);
    try {
      const hparams = (ckpt.json as { hparams?: unknown }).hparams;
      if (isFinetuneHparams(hparams)) {
        const built = await buildDualEncoder(hparams);
        await loadClipWeights(built.model, ckpt.tensors, { prefix: 'state_dict.model.' });
        built.model.eval();
        return {
          encoders: built.model,
          tokenizer: built.tokenizer,
          contextLength: built.contextLength,
          imageSize: imageSize ?? built.imageSize,
          embedDim: built.model.textProjection.outFeatures,
          dispose: () => built.model.dispose?.(),
        };
      }
    } finally {
      tf.dispose(Object.values(ckpt.tensors));
    }
  }
  const cfg = resolveModelConfig(modelName);
  const size = imageSize ?? cfg.vision.imageSize;
  const model: CLIP | LlipModel = llip ? new LlipModel(cfg, { ...llip, imageSize: size }).eval() : createClip(cfg, { imageSize: size }).eval();
  await loadWeights(model, weights);
  return { encoders: model, tokenizer: ClipTokenizer.default(), contextLength: cfg.text.contextLength, imageSize: size, embedDim: cfg.embedDim, dispose: () => model.dispose?.() };
}

/** Builds a ZeroShotEval callback over an ImageNet-style folder (used by train.ts `--zeroshot_data`). */
export async function buildZeroShotCallback(o: {
  data: string;
  classNames?: string;
  templates?: string;
  tokenizer: TextTokenizer;
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

function llipTokens(k: number | undefined): number {
  if (k === undefined) throw new MisconfigurationError('`--model llip` needs `--num_mixture_tokens K` (the K the checkpoint was trained with).');
  return k;
}

/** Loads `--weights` into `model`: a safetensors state dict or a lightclip `.ckpt` (prefix detected). */
export async function loadWeights(model: CLIP | LlipModel, file: string): Promise<void> {
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
  @Describe("'llip' for a Llip checkpoint (class prompts condition every image); default CLIP") @IsOptional() @IsIn(['clip', 'llip']) model?: 'clip' | 'llip';
  @Describe('Llip: number K of mixture tokens') @IsOptional() @IsInt() @Min(1) num_mixture_tokens?: number;
  @Describe('Llip: cross-attention temperature') @IsOptional() @IsNumber() llip_temperature?: number;
  @Describe('Llip: cross-attention heads (default: embed_dim / 64)') @IsOptional() @IsInt() @Min(1) llip_heads?: number;
}

class EmbedConfig {
  @Describe('weights: safetensors state dict or lightclip .ckpt') @IsString() weights = '';
  @Describe('model name or JSON config path') @IsString() model_name = 'ViT-B/32';
  @Describe('folder of images (embedded in file-name order)') @IsString() images = '';
  @Describe('text file, one caption per line') @IsString() texts = '';
  @Describe('output safetensors file (tensors `image` and `text`)') @IsString() out = '';
  @Describe('Deep Lake dataset (local, s3://, hub://) instead of --images/--texts: embeds its image/caption pairs') @IsOptional() @IsString() path?: string;
  @Describe('Activeloop token for hub:// --path (else ACTIVELOOP_TOKEN)') @IsOptional() @IsString() token?: string;
  @Describe('Deep Lake image / caption tensors (default URL/TEXT, else image/caption)') @IsOptional() @IsString() image_key?: string;
  @Describe('Deep Lake caption tensor') @IsOptional() @IsString() text_key?: string;
  @Describe('Deep Lake: embed at most this many samples (0: all)') @IsInt() @Min(0) limit = 0;
  @Describe('images per batch') @IsInt() @Min(1) batch_size = 64;
  @Describe('auto | cpu | gpu') @IsIn(['auto', 'cpu', 'gpu']) accelerator: 'auto' | 'cpu' | 'gpu' = 'auto';
}

function required(value: string, flag: string, what: string): string {
  if (!value) throw new MisconfigurationError(`\`${flag}\` is required: ${what}.`);
  return value;
}

/** `eval.ts zeroshot`: prints and returns top-1/top-5. */
export async function zeroshot(argv: readonly string[], program = 'node dist/eval.js'): Promise<TopKResult | null> {
  const r = resolveConfig(ZeroShotConfig, argv);
  if (r.help) return void console.log(renderConfigHelp(ZeroShotConfig, { usage: `usage: ${program} zeroshot --weights W --model_name M --data DIR` })), null;
  const c = r.config;
  if (c.model_name.startsWith('corenet/')) {
    // CoreNet CLIP: a `.pt` with CoreNet's names, CoreNet's zero-shot procedure (modules/corenet/zeroshot.ts).
    await selectBackend({ accelerator: c.accelerator });
    const scan = await scanImageFolder(required(c.data, '--data', 'an ImageNet-style folder'), { classNames: await loadClassNames(c.class_names) });
    const result = await corenetZeroShotFromFile(c.model_name, required(c.weights, '--weights', 'a CoreNet .pt state dict'), { samples: scan.samples, classNames: scan.classNames, templates: await loadTemplates(c.templates), tokenizer: ClipTokenizer.default(), batchSize: c.batch_size });
    console.log(`zero-shot (CoreNet procedure) on ${result.count} images, ${scan.classNames.length} classes: top-1 ${(100 * result.top1).toFixed(2)}%  top-5 ${(100 * result.top5).toFixed(2)}%`);
    return result;
  }
  await selectBackend({ accelerator: c.accelerator });
  const scan = await scanImageFolder(required(c.data, '--data', 'an ImageNet-style folder'), { classNames: await loadClassNames(c.class_names) });
  const llip = c.model === 'llip' ? { numMixtureTokens: llipTokens(c.num_mixture_tokens), temperature: c.llip_temperature, heads: c.llip_heads } : undefined;
  const m = await loadEvalModel(required(c.weights, '--weights', 'a safetensors or .ckpt file'), c.model_name, c.image_size, llip);
  const tokens = classPromptTokens(m.tokenizer, scan.classNames, await loadTemplates(c.templates), m.contextLength);
  const classifier = zeroShotClassifier(m.encoders, tokens);
  tf.dispose(tokens);
  const loader = new LabelledImageLoader(scan.samples, m.imageSize, c.batch_size);
  const result = await zeroShotAccuracy(m.encoders, classifier, loader);
  classifier.dispose();
  m.dispose();
  console.log(`zero-shot on ${result.count} images, ${scan.classNames.length} classes: top-1 ${(100 * result.top1).toFixed(2)}%  top-5 ${(100 * result.top5).toFixed(2)}%`);
  if (loader.skipped) console.log(`skipped ${loader.skipped} unreadable image(s)`);
  return result;
}

/** `eval.ts embed`: writes L2-normalised image and text features as safetensors. */
export async function embed(argv: readonly string[], program = 'node dist/eval.js'): Promise<{ image: number[]; text: number[] } | null> {
  const r = resolveConfig(EmbedConfig, argv);
  if (r.help) return void console.log(renderConfigHelp(EmbedConfig, { usage: `usage: ${program} embed --weights W --model_name M --images DIR --texts FILE --out OUT.safetensors` })), null;
  const c = r.config;
  await selectBackend({ accelerator: c.accelerator });
  if (c.path) return embedDeepLake(c);
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
  const m = await loadEvalModel(required(c.weights, '--weights', 'a safetensors or .ckpt file'), c.model_name, undefined);
  const model = m.encoders;
  const size = m.imageSize;
  const transform = clipEvalTransform(size);
  const imageParts: Tensor[] = [];
  for (let i = 0; i < files.length; i += c.batch_size) {
    const px = await Promise.all(files.slice(i, i + c.batch_size).map((f) => transform.apply(path.join(dir, f))));
    const batch = tf.tensor4d(concat(px), [px.length, size, size, 3]);
    imageParts.push(tf.tidy(() => F.normalize(model.encodeImage(batch))));
    batch.dispose();
  }
  const textParts: Tensor[] = [];
  for (let i = 0; i < lines.length; i += c.batch_size) {
    const t = tokenIds(m.tokenizer, lines.slice(i, i + c.batch_size), m.contextLength);
    textParts.push(tf.tidy(() => F.normalize(model.encodeText(t))));
    t.dispose();
  }
  const image = imageParts.length ? tf.concat(imageParts) : tf.zeros([0, m.embedDim]);
  const text = textParts.length ? tf.concat(textParts) : tf.zeros([0, m.embedDim]);
  await writeSafetensors(required(c.out, '--out', 'the output .safetensors path'), { image, text }, { images: JSON.stringify(files), model_name: c.model_name });
  console.log(`wrote ${files.length} image and ${lines.length} text embeddings (dim ${m.embedDim}) to ${c.out}`);
  const out = { image: image.shape, text: text.shape };
  tf.dispose([image, text, ...imageParts, ...textParts]);
  m.dispose();
  return out;
}

/** `embed --path DS`: the pairs of a Deep Lake dataset, in index order; unusable samples are skipped and counted. */
async function embedDeepLake(c: EmbedConfig): Promise<{ image: number[]; text: number[] }> {
  const pairs = await openDeepLakePairs(c.path!, { token: c.token, imageKey: c.image_key, textKey: c.text_key, log: (l) => console.warn(l) });
  const m = await loadEvalModel(required(c.weights, '--weights', 'a safetensors or .ckpt file'), c.model_name, undefined);
  const model = m.encoders;
  const size = m.imageSize;
  const transform = clipEvalTransform(size);
  const n = c.limit > 0 ? Math.min(c.limit, pairs.length) : pairs.length;
  const kept: number[] = [];
  const imageParts: Tensor[] = [];
  const textParts: Tensor[] = [];
  let skipped = 0;
  for (let i = 0; i < n; i += c.batch_size) {
    const px: Float32Array[] = [];
    const caps: string[] = [];
    for (let k = i; k < Math.min(n, i + c.batch_size); k++) {
      const s = await pairs.read(k);
      const image = 'error' in s ? null : await transform.apply(s.image).catch(() => null);
      if (!image || 'error' in s) {
        skipped++;
        continue;
      }
      px.push(image);
      caps.push(s.caption);
      kept.push(k);
    }
    if (!px.length) continue;
    const batch = tf.tensor4d(concat(px), [px.length, size, size, 3]);
    imageParts.push(tf.tidy(() => F.normalize(model.encodeImage(batch))));
    batch.dispose();
    const t = tokenIds(m.tokenizer, caps, m.contextLength);
    textParts.push(tf.tidy(() => F.normalize(model.encodeText(t))));
    t.dispose();
  }
  const image = imageParts.length ? tf.concat(imageParts) : tf.zeros([0, m.embedDim]);
  const text = textParts.length ? tf.concat(textParts) : tf.zeros([0, m.embedDim]);
  await writeSafetensors(required(c.out, '--out', 'the output .safetensors path'), { image, text }, { deeplake_path: pairs.dataset.root, indices: JSON.stringify(kept), model_name: c.model_name });
  console.log(`wrote ${kept.length} image/text embedding pairs (dim ${m.embedDim}) of ${pairs.dataset.root} to ${c.out}${skipped ? `; skipped ${skipped} unusable samples` : ''}`);
  const out = { image: image.shape, text: text.shape };
  tf.dispose([image, text, ...imageParts, ...textParts]);
  m.dispose();
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
export async function main(argv: readonly string[], program = 'node dist/eval.js'): Promise<unknown> {
  const [command, ...rest] = argv;
  if (command === 'zeroshot') return zeroshot(rest, program);
  if (command === 'embed') return embed(rest, program);
  const usage = `usage: ${program} <zeroshot|embed> [--help] [options]`;
  if (command === undefined || command === '--help' || command === '-h') return void console.log(usage), null;
  throw new MisconfigurationError(`Unknown command ${JSON.stringify(command)}. ${usage}`);
}

runIfMain(import.meta.url, main);
