/**
 * Building CLIP models by name and loading their weights (open_clip's `create_model` and
 * `load_checkpoint`). Importing this file registers every known model config under the
 * registry kind `clip` (`create('clip', 'ViT-B/32', { imageSize: 256 })`).
 */
import { existsSync } from 'node:fs';
import { loadSafetensorsAsTensors } from '../../core/checkpoint/safetensors.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { StateDictError, type LoadStateDictResult, type Module, type StateDict } from '../../core/nn/index.js';
import { register } from '../../core/registry.js';
import { tf, type Tensor } from '../../core/tf.js';
import { isResNetConfig, listModels, resolveModelConfig, type ClipConfig } from './config.js';
import { CLIP } from './model.js';

/** Named overrides applied over a model's config, last (open_clip's `force_*` arguments). */
export interface CreateClipOverrides {
  /** Input resolution (`force_image_size`): a multiple of the patch size (ViT) or of 32 (ResNet). */
  imageSize?: number;
  /** QuickGELU instead of exact GELU (`force_quick_gelu`). */
  quickGelu?: boolean;
}

const OVERRIDE_KEYS = ['imageSize', 'quickGelu'] as const;

/**
 * Validates overrides that arrive untyped (registry options, config files).
 * @throws MisconfigurationError naming the key on unknown keys or wrong types.
 */
export function parseClipOverrides(raw: Record<string, unknown> | undefined): CreateClipOverrides {
  const out: CreateClipOverrides = {};
  if (raw === undefined) return out;
  for (const key of Object.keys(raw)) {
    if (!(OVERRIDE_KEYS as readonly string[]).includes(key)) {
      throw new MisconfigurationError(`Unknown CLIP override \`${key}\`. Allowed: ${OVERRIDE_KEYS.join(', ')}.`);
    }
  }
  const { imageSize, quickGelu } = raw;
  if (imageSize !== undefined) {
    if (typeof imageSize !== 'number' || !Number.isInteger(imageSize) || imageSize <= 0) {
      throw new MisconfigurationError(`\`imageSize\` must be a positive integer, got ${showValue(imageSize)}`);
    }
    out.imageSize = imageSize;
  }
  if (quickGelu !== undefined) {
    if (typeof quickGelu !== 'boolean') throw new MisconfigurationError(`\`quickGelu\` must be true or false, got ${showValue(quickGelu)}`);
    out.quickGelu = quickGelu;
  }
  return out;
}

/**
 * Builds a CLIP model (open_clip's `create_model`): the config comes from a model name
 * (`ViT-B/32`, `RN50`, see `listModels()`), a path to a JSON config, or a {@link ClipConfig};
 * the named `overrides` are applied last. The weights are OpenAI's initialisation; load
 * pretrained ones with {@link loadClipWeights}.
 *
 * @param nameOrConfig model name, JSON config path, or config object (not modified).
 * @param overrides `imageSize` (re-sizes the positional embeddings) and `quickGelu`.
 * @throws MisconfigurationError for an unknown name (listing the available ones), an invalid
 *   config, or an `imageSize` the architecture cannot take.
 * @example
 * ```ts
 * const model = createClip('ViT-B/32', { imageSize: 256 });
 * await loadClipWeights(model, 'ViT-B-32.safetensors', { strict: false });
 * ```
 */
export function createClip(nameOrConfig: string | ClipConfig, overrides: CreateClipOverrides = {}): CLIP {
  const cfg = typeof nameOrConfig === 'string' ? resolveModelConfig(nameOrConfig) : structuredClone(nameOrConfig);
  const { imageSize, quickGelu } = parseClipOverrides({ ...overrides });
  if (imageSize !== undefined) {
    const unit = isResNetConfig(cfg) ? 32 : cfg.vision.patchSize!;
    if (imageSize % unit !== 0) {
      const what = isResNetConfig(cfg) ? 'a multiple of 32 for a ResNet' : `a multiple of the patch size ${unit}`;
      throw new MisconfigurationError(`\`imageSize\` override must be ${what}, got ${imageSize}`);
    }
    cfg.vision.imageSize = imageSize;
  }
  if (quickGelu !== undefined) cfg.quickGelu = quickGelu;
  return new CLIP(cfg);
}

/** Options of {@link loadClipWeights}. */
export interface LoadClipWeightsOptions {
  /** Missing or unexpected keys are errors (default true); mis-shaped keys always are. */
  strict?: boolean;
  /**
   * Only keys under this prefix are read, with the prefix removed (`state_dict.model.`).
   * By default the prefix is detected: keys match the model directly, or under the one
   * prefix (`state_dict.`, `module.`, ...) that matches the most of the model's keys.
   */
  prefix?: string;
}

// Non-weight entries of OpenAI's JIT state dicts, which its `build_model` deletes too.
const OPENAI_NON_WEIGHT_KEYS = ['input_resolution', 'context_length', 'vocab_size'];

/**
 * Loads weights by name into a CLIP model (or one of its towers): from a safetensors file
 * (OpenAI/open_clip weights converted to safetensors, or a lightclip `.ckpt`) or from
 * tensors already in memory. Names are OpenAI's; a prefix such as a lightclip checkpoint's
 * `state_dict.` or open_clip's DDP `module.` is found and removed (see
 * {@link LoadClipWeightsOptions.prefix}), other checkpoint entries (optimizer state) are
 * ignored, OpenAI's `input_resolution`/`context_length`/`vocab_size` entries are dropped,
 * and a missing BatchNorm `num_batches_tracked` counts as 0 (as PyTorch loads old files).
 * F16/BF16 weights are converted to float32.
 *
 * @returns the keys that did not match (non-empty only when `strict` is false).
 * @throws StateDictError naming every missing, unexpected and mis-shaped key (and the file).
 * @throws MisconfigurationError when the file does not exist.
 */
export async function loadClipWeights(model: Module, source: string | StateDict, options: LoadClipWeightsOptions = {}): Promise<LoadStateDictResult> {
  let owned: StateDict | null = null;
  if (typeof source === 'string') {
    if (!existsSync(source)) throw new MisconfigurationError(`CLIP weights file ${showValue(source)} does not exist; expected a .safetensors file.`);
    owned = await loadSafetensorsAsTensors(source);
  }
  const tensors = owned ?? (source as StateDict);
  const ownKeys = Object.keys(model.stateDict());
  const sd = selectKeys(tensors, ownKeys, options.prefix);
  for (const key of OPENAI_NON_WEIGHT_KEYS) delete sd[key];
  const filled: Tensor[] = [];
  for (const key of ownKeys) {
    if (key.endsWith('.num_batches_tracked') && !(key in sd)) {
      const zero = tf.scalar(0, 'int32');
      filled.push(zero);
      sd[key] = zero;
    }
  }
  try {
    return model.loadStateDict(sd, { strict: options.strict ?? true });
  } catch (err) {
    if (!(err instanceof StateDictError)) throw err;
    const from = typeof source === 'string' ? `from ${source}` : 'from the given tensors';
    const hint = err.shapeMismatches.some((m) => m.includes('positional_embedding'))
      ? ' Hint: a positional_embedding size differs, so the weights were trained at another image size or context length.'
      : '';
    throw new StateDictError(`Cannot load CLIP weights ${from}. ${err.message}${hint}`, err.missingKeys, err.unexpectedKeys, err.shapeMismatches);
  } finally {
    for (const t of filled) t.dispose();
    if (owned) for (const t of Object.values(owned)) t.dispose();
  }
}

/** The entries of `tensors` under the model's naming: explicit prefix, detected prefix, or as is. */
function selectKeys(tensors: StateDict, ownKeys: readonly string[], prefix: string | undefined): StateDict {
  const under = (p: string): StateDict => {
    const out: StateDict = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith(p)) out[k.slice(p.length)] = t;
    return out;
  };
  if (prefix !== undefined) return under(prefix);
  const score = (p: string): number => ownKeys.reduce((n, k) => n + (`${p}${k}` in tensors ? 1 : 0), 0);
  // Candidate prefixes: whatever precedes the model's first key in the file's keys.
  const first = ownKeys[0];
  let best = '';
  let bestScore = score('');
  if (first !== undefined && bestScore < ownKeys.length) {
    for (const k of Object.keys(tensors)) {
      if (!k.endsWith(`.${first}`)) continue;
      const p = k.slice(0, k.length - first.length);
      const s = score(p);
      if (s > bestScore) [best, bestScore] = [p, s];
    }
  }
  return best === '' ? { ...tensors } : under(best);
}

/**
 * Registers every model of `listModels()` under the registry kind `clip`, each building with
 * {@link createClip} from its options (`imageSize`, `quickGelu`). Runs when this file is
 * imported; call it again after `addModelConfig` to register the added names.
 */
export function registerClipModels(): void {
  for (const name of listModels()) {
    const cfg = resolveModelConfig(name);
    const tower = isResNetConfig(cfg) ? `ModifiedResNet ${JSON.stringify(cfg.vision.layers)}` : `ViT ${cfg.vision.layers}×${cfg.vision.width}/${cfg.vision.patchSize}`;
    register('clip', name, (options) => createClip(name, parseClipOverrides(options)), {
      description: `CLIP ${tower}, ${cfg.vision.imageSize}px, embed ${cfg.embedDim}`,
    });
  }
}

registerClipModels();
