import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { configPath } from '../../core/paths.js';
import { naturalCompare } from '../../core/registry.js';

/** Image tower shape. `layers` is a number for a ViT, four stage depths for a ModifiedResNet. */
export interface ClipVisionConfig {
  /** Input resolution (square). */
  imageSize: number;
  /** ViT: transformer depth. ResNet: bottleneck blocks per stage. */
  layers: number | [number, number, number, number];
  /** ViT: embedding width. ResNet: stem width (stage k has `width * 2^k` planes). */
  width: number;
  /** ViT patch size; `null` for ResNets. */
  patchSize: number | null;
  /** ViT: attention heads. ResNet: heads of the attention-pooling layer. */
  heads: number;
}

/** Text tower shape. */
export interface ClipTextConfig {
  contextLength: number;
  vocabSize: number;
  width: number;
  heads: number;
  layers: number;
}

/** A CLIP model's shape, parsed from a `configs/*.json` file (flat OpenAI or nested open_clip form). */
export interface ClipConfig {
  /** Width of the joint image-text embedding. */
  embedDim: number;
  vision: ClipVisionConfig;
  text: ClipTextConfig;
  /** `x * sigmoid(1.702 x)` instead of exact GELU: true for OpenAI's weights. */
  quickGelu: boolean;
}

// Keys of the two accepted file shapes. Anything else is rejected rather than ignored, so a
// typo (`transformer_head`) or an unsupported open_clip feature (`mlp_ratio`) fails loudly.
const FLAT_REQUIRED = [
  'embed_dim', 'image_resolution', 'vision_layers', 'vision_width', 'vision_patch_size',
  'context_length', 'vocab_size', 'transformer_width', 'transformer_heads', 'transformer_layers',
] as const;
const FLAT_OPTIONAL = ['vision_heads', 'quick_gelu'] as const;
const NESTED_TOP = { required: ['embed_dim', 'vision_cfg', 'text_cfg'], optional: ['quick_gelu'] } as const;
const NESTED_VISION = { required: ['image_size', 'layers', 'width'], optional: ['patch_size', 'head_width'] } as const;
const NESTED_TEXT = { required: ['context_length', 'vocab_size', 'width', 'heads', 'layers'], optional: [] } as const;

// open_clip's `CLIPVisionCfg.head_width` default; OpenAI also uses 64-wide heads
// (`vision_heads = vision_width // 64`, ResNet `vision_width * 32 // 64`).
const DEFAULT_HEAD_WIDTH = 64;

/** Validates one level of a raw config against its key lists, with messages naming `source`. */
class Section {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly prefix: string,
    private readonly source: string,
  ) {}

  static of(raw: unknown, prefix: string, source: string, required: readonly string[], optional: readonly string[]): Section {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      const what = prefix ? `\`${prefix.slice(0, -1)}\`` : 'A model config';
      throw new MisconfigurationError(`${what} in ${source} must be a JSON object, got ${showValue(raw)}.`);
    }
    const obj = raw as Record<string, unknown>;
    const allowed = [...required, ...optional];
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        throw new MisconfigurationError(
          `Unknown key \`${prefix}${key}\` in ${source}. Allowed keys here: ${allowed.join(', ')}.`,
        );
      }
    }
    for (const key of required) {
      if (!(key in obj)) throw new MisconfigurationError(`Missing key \`${prefix}${key}\` in ${source}.`);
    }
    return new Section(obj, prefix, source);
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  fail(key: string, expected: string): never {
    throw new MisconfigurationError(
      `\`${this.prefix}${key}\` in ${this.source} must be ${expected}, got ${showValue(this.obj[key])}.`,
    );
  }

  posInt(key: string): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(key, 'a positive integer');
    return v;
  }

  optPosInt(key: string): number | null {
    return this.obj[key] == null ? null : this.posInt(key);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  layers(key: string): number | [number, number, number, number] {
    const v = this.obj[key];
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    if (Array.isArray(v) && v.length === 4 && v.every((n) => typeof n === 'number' && Number.isInteger(n) && n > 0)) {
      return [v[0], v[1], v[2], v[3]] as [number, number, number, number];
    }
    return this.fail(key, 'a positive integer (ViT depth) or a list of 4 positive integers (ResNet stage depths)');
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new MisconfigurationError(message);
}

/**
 * Parses and validates a model config in OpenAI's flat form (`embed_dim`, `image_resolution`,
 * `vision_layers`, ...; optional `vision_heads`, `quick_gelu`) or open_clip's nested form
 * (`embed_dim`, `vision_cfg`, `text_cfg`; optional `quick_gelu`, `vision_cfg.head_width`).
 *
 * `quickGelu` defaults to true for the flat form (OpenAI trained with QuickGELU) and false for
 * the nested one (open_clip's default; its OpenAI-compatible files say `"quick_gelu": true`).
 *
 * @param raw the parsed JSON.
 * @param source where it came from, for error messages (a file path).
 * @throws MisconfigurationError naming `source` and the key on unknown, missing or invalid keys.
 */
export function parseClipConfig(raw: unknown, source = 'model config'): ClipConfig {
  const isNested = typeof raw === 'object' && raw !== null && ('vision_cfg' in raw || 'text_cfg' in raw);
  let cfg: ClipConfig;
  let [headWidth, headsOverride]: [number, number | null] = [DEFAULT_HEAD_WIDTH, null];
  if (isNested) {
    const top = Section.of(raw, '', source, NESTED_TOP.required, NESTED_TOP.optional);
    const v = Section.of(top.raw('vision_cfg'), 'vision_cfg.', source, NESTED_VISION.required, NESTED_VISION.optional);
    const t = Section.of(top.raw('text_cfg'), 'text_cfg.', source, NESTED_TEXT.required, NESTED_TEXT.optional);
    const layers = v.layers('layers');
    const patchSize = v.optPosInt('patch_size');
    headWidth = v.optPosInt('head_width') ?? DEFAULT_HEAD_WIDTH;
    if (typeof layers === 'number' && patchSize === null) v.fail('patch_size', 'a positive integer for a ViT (`layers` is a number)');
    cfg = {
      embedDim: top.posInt('embed_dim'),
      vision: { imageSize: v.posInt('image_size'), layers, width: v.posInt('width'), patchSize: typeof layers === 'number' ? patchSize : null, heads: 0 },
      text: { contextLength: t.posInt('context_length'), vocabSize: t.posInt('vocab_size'), width: t.posInt('width'), heads: t.posInt('heads'), layers: t.posInt('layers') },
      quickGelu: top.bool('quick_gelu', false),
    };
  } else {
    const f = Section.of(raw, '', source, FLAT_REQUIRED, FLAT_OPTIONAL);
    const layers = f.layers('vision_layers');
    const patchSize = f.optPosInt('vision_patch_size');
    if (typeof layers === 'number' && patchSize === null) f.fail('vision_patch_size', 'a positive integer for a ViT (`vision_layers` is a number)');
    if (Array.isArray(layers) && patchSize !== null) f.fail('vision_patch_size', 'null for a ResNet (`vision_layers` is a list)');
    headsOverride = f.optPosInt('vision_heads');
    cfg = {
      embedDim: f.posInt('embed_dim'),
      vision: { imageSize: f.posInt('image_resolution'), layers, width: f.posInt('vision_width'), patchSize, heads: 0 },
      text: { contextLength: f.posInt('context_length'), vocabSize: f.posInt('vocab_size'), width: f.posInt('transformer_width'),
        heads: f.posInt('transformer_heads'), layers: f.posInt('transformer_layers') },
      quickGelu: f.bool('quick_gelu', true),
    };
  }
  const { vision, text } = cfg;
  if (vision.patchSize !== null) {
    check(vision.imageSize % vision.patchSize === 0, `Image size ${vision.imageSize} in ${source} must be a multiple of the patch size ${vision.patchSize}.`);
    vision.heads = headsOverride ?? vision.width / headWidth;
    check(Number.isInteger(vision.heads) && vision.width % vision.heads === 0,
      `Vision width ${vision.width} in ${source} must split into whole heads of width ${headWidth}; set \`vision_heads\` (flat) or \`vision_cfg.head_width\` (nested).`);
  } else {
    // Five stride-2 steps (stem conv, stem pool, stages 2-4) take the image to size/32.
    check(vision.imageSize % 32 === 0, `Image size ${vision.imageSize} in ${source} must be a multiple of 32 for a ResNet.`);
    check(vision.width % 2 === 0, `Vision width ${vision.width} in ${source} must be even for a ResNet (the stem starts at width/2).`);
    vision.heads = headsOverride ?? (vision.width * 32) / headWidth;
    check(Number.isInteger(vision.heads) && (vision.width * 32) % vision.heads === 0,
      `Attention-pool width ${vision.width * 32} in ${source} must split into whole heads; set \`vision_heads\` (flat) or \`vision_cfg.head_width\` (nested).`);
  }
  check(text.width % text.heads === 0, `Text width ${text.width} in ${source} must be a multiple of its ${text.heads} heads.`);
  return cfg;
}

/** Whether `cfg` describes a ModifiedResNet image tower (rather than a ViT). */
export function isResNetConfig(cfg: ClipConfig): boolean {
  return Array.isArray(cfg.vision.layers);
}

/** File name of a model's config: `/` written as `-` (`ViT-B/32` -> `ViT-B-32.json`). */
export function modelNameToFile(name: string): string {
  return `${name.replaceAll('/', '-')}.json`;
}

/** Model name of a config file: the inverse of {@link modelNameToFile} for OpenAI's ViT names. */
function fileToModelName(file: string): string {
  const stem = basename(file, '.json');
  // OpenAI writes the patch size after a slash (`ViT-L/14-336px`); every other name is the stem.
  return stem.replace(/^(ViT-[A-Za-z]+)-(\d)/, '$1/$2');
}

interface RegisteredConfig {
  readonly name: string;
  readonly file: string;
  readonly config: ClipConfig;
}

// Keyed by file stem, so `ViT-B/32` and open_clip's `ViT-B-32` find the same entry.
const registry = new Map<string, RegisteredConfig>();
let builtinsLoaded = false;

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new MisconfigurationError(`Model config ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function register(file: string, raw: unknown): string {
  const name = fileToModelName(file);
  registry.set(basename(file, '.json'), { name, file, config: parseClipConfig(raw, file) });
  return name;
}

function ensureBuiltins(): void {
  if (builtinsLoaded) return;
  builtinsLoaded = true;
  const dir = configPath();
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const file = join(dir, entry);
    const raw = readJson(file);
    // configs/ also holds recipes; a model config is recognised by its `embed_dim` (as
    // open_clip's `_rescan_model_configs` does), and then validated strictly.
    if (typeof raw === 'object' && raw !== null && 'embed_dim' in raw) register(file, raw);
  }
}

/** Names of every known model config, naturally sorted (`RN50` before `RN101`). */
export function listModels(): string[] {
  ensureBuiltins();
  return [...registry.values()].map((e) => e.name).sort(naturalCompare);
}

/**
 * Registers the model config at `pathOrDir` (a JSON file, or every `*.json` in a folder) under
 * its file name, replacing a built-in of the same name.
 * @returns the names added.
 * @throws MisconfigurationError when the path does not exist or a file is not a valid config.
 */
export function addModelConfig(pathOrDir: string): string[] {
  ensureBuiltins();
  const path = resolve(pathOrDir);
  if (!existsSync(path)) {
    throw new MisconfigurationError(`Model config path ${showValue(pathOrDir)} does not exist; expected a JSON file or a folder of them.`);
  }
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.json')).sort(naturalCompare).map((f) => join(path, f))
    : [path];
  return files.map((file) => register(file, readJson(file)));
}

/**
 * The config of model `name` (`ViT-B/32`, or the file-style `ViT-B-32`), as a deep copy the
 * caller may modify.
 * @throws MisconfigurationError listing the available names when `name` is unknown.
 */
export function getModelConfig(name: string): ClipConfig {
  ensureBuiltins();
  const entry = registry.get(modelNameToFile(name).slice(0, -'.json'.length));
  if (!entry) {
    throw new MisconfigurationError(
      `Unknown model name \`--model_name=${name}\`. Available: ${listModels().join(', ')}. A path to a JSON config file is also accepted.`,
    );
  }
  return structuredClone(entry.config);
}

/**
 * Resolves a `--model_name` value: a known model name, or a path to a JSON file in either
 * config form.
 * @throws MisconfigurationError for an unknown name, a missing file or an invalid config.
 */
export function resolveModelConfig(nameOrPath: string): ClipConfig {
  ensureBuiltins();
  if (registry.has(modelNameToFile(nameOrPath).slice(0, -'.json'.length))) return getModelConfig(nameOrPath);
  const looksLikeFile = nameOrPath.toLowerCase().endsWith('.json');
  if (existsSync(nameOrPath) && statSync(nameOrPath).isFile()) return parseClipConfig(readJson(nameOrPath), nameOrPath);
  if (looksLikeFile) {
    throw new MisconfigurationError(`\`--model_name\` config file ${showValue(nameOrPath)} does not exist.`);
  }
  return getModelConfig(nameOrPath);
}

type Shapes = Record<string, number[]>;

function linear(out: Shapes, prefix: string, inDim: number, outDim: number): void {
  out[`${prefix}.weight`] = [outDim, inDim];
  out[`${prefix}.bias`] = [outDim];
}

// LayerNorm's weight and bias have a Linear's key names, with 1-d shapes.
const layerNorm = (out: Shapes, prefix: string, dim: number): void => {
  out[`${prefix}.weight`] = [dim];
  out[`${prefix}.bias`] = [dim];
};

function batchNorm(out: Shapes, prefix: string, dim: number): void {
  for (const key of ['weight', 'bias', 'running_mean', 'running_var']) out[`${prefix}.${key}`] = [dim];
  // A 0-d int64 counter in PyTorch; listed because it is in OpenAI's state dict.
  out[`${prefix}.num_batches_tracked`] = [];
}

function transformer(out: Shapes, prefix: string, width: number, layers: number): void {
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.resblocks.${i}`;
    // nn.MultiheadAttention packs q, k, v into one [3w, w] projection.
    out[`${p}.attn.in_proj_weight`] = [3 * width, width];
    out[`${p}.attn.in_proj_bias`] = [3 * width];
    linear(out, `${p}.attn.out_proj`, width, width);
    layerNorm(out, `${p}.ln_1`, width);
    linear(out, `${p}.mlp.c_fc`, width, 4 * width);
    linear(out, `${p}.mlp.c_proj`, 4 * width, width);
    layerNorm(out, `${p}.ln_2`, width);
  }
}

function modifiedResNet(out: Shapes, cfg: ClipConfig, stages: [number, number, number, number]): void {
  const w = cfg.vision.width;
  out['visual.conv1.weight'] = [w / 2, 3, 3, 3];
  batchNorm(out, 'visual.bn1', w / 2);
  out['visual.conv2.weight'] = [w / 2, w / 2, 3, 3];
  batchNorm(out, 'visual.bn2', w / 2);
  out['visual.conv3.weight'] = [w, w / 2, 3, 3];
  batchNorm(out, 'visual.bn3', w);
  let inplanes = w;
  stages.forEach((blocks, k) => {
    const planes = w * 2 ** k;
    const stride = k === 0 ? 1 : 2;
    for (let m = 0; m < blocks; m++) {
      const p = `visual.layer${k + 1}.${m}`;
      out[`${p}.conv1.weight`] = [planes, inplanes, 1, 1];
      batchNorm(out, `${p}.bn1`, planes);
      out[`${p}.conv2.weight`] = [planes, planes, 3, 3];
      batchNorm(out, `${p}.bn2`, planes);
      out[`${p}.conv3.weight`] = [planes * 4, planes, 1, 1];
      batchNorm(out, `${p}.bn3`, planes * 4);
      // Bottleneck.expansion = 4; only a block's first unit changes stride or width.
      if (m === 0 && (stride > 1 || inplanes !== planes * 4)) {
        out[`${p}.downsample.0.weight`] = [planes * 4, inplanes, 1, 1];
        batchNorm(out, `${p}.downsample.1`, planes * 4);
      }
      inplanes = planes * 4;
    }
  });
  const embed = w * 32;
  const spatial = cfg.vision.imageSize / 32;
  out['visual.attnpool.positional_embedding'] = [spatial * spatial + 1, embed];
  linear(out, 'visual.attnpool.k_proj', embed, embed);
  linear(out, 'visual.attnpool.q_proj', embed, embed);
  linear(out, 'visual.attnpool.v_proj', embed, embed);
  linear(out, 'visual.attnpool.c_proj', embed, cfg.embedDim);
}

function visionTransformer(out: Shapes, cfg: ClipConfig, layers: number, patch: number): void {
  const { width, imageSize } = cfg.vision;
  const grid = imageSize / patch;
  out['visual.class_embedding'] = [width];
  out['visual.positional_embedding'] = [grid * grid + 1, width];
  out['visual.proj'] = [width, cfg.embedDim];
  out['visual.conv1.weight'] = [width, 3, patch, patch];
  layerNorm(out, 'visual.ln_pre', width);
  transformer(out, 'visual.transformer', width, layers);
  layerNorm(out, 'visual.ln_post', width);
}

/**
 * Every key of OpenAI's CLIP state dict for `cfg` with its shape, in PyTorch's order (a
 * module's own parameters, then its children), without allocating any tensor. Linear
 * weights are `[out, in]`, convolutions `[out, in, kh, kw]`; `logit_scale` and BatchNorm's
 * `num_batches_tracked` are 0-d (`[]`). Loaders use it to check a checkpoint before
 * reading it, and models to check that they named every parameter as OpenAI does.
 */
export function clipStateDictShapes(cfg: ClipConfig): Record<string, number[]> {
  const out: Shapes = {};
  const { text } = cfg;
  out['positional_embedding'] = [text.contextLength, text.width];
  out['text_projection'] = [text.width, cfg.embedDim];
  out['logit_scale'] = [];
  const { layers, patchSize } = cfg.vision;
  if (Array.isArray(layers)) modifiedResNet(out, cfg, layers);
  else visionTransformer(out, cfg, layers, patchSize!);
  transformer(out, 'transformer', text.width, text.layers);
  out['token_embedding.weight'] = [text.vocabSize, text.width];
  layerNorm(out, 'ln_final', text.width);
  return out;
}
