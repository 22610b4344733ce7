/**
 * Loads torchvision ResNet weights (`resnet50-0676ba61.pth`, `resnet50(pretrained=True)`)
 * into lightclip's {@link ResNet}, whose state-dict names are torchvision's own. The mapping
 * is therefore mostly about the ways real checkpoints differ from a bare `state_dict()`:
 *
 * - wrappers: `module.` (DistributedDataParallel), train-CLIP's `model.visual.`, or any
 *   prefix, found from the stem conv's key;
 * - checkpoints saved before PyTorch 0.4.1 (torchvision's original ImageNet weights) have
 *   no `num_batches_tracked`, which PyTorch's BatchNorm fills in with 0 on load;
 * - a replaced or absent classifier (`fc` of another width, or a feature extractor).
 */
import { StateDictError, type StateDict } from '../../core/nn/index.js';
import { tf } from '../../core/tf.js';
import type { ResNet } from '../vision/resnet.js';

/** Options of {@link torchvisionResnetToLightclip}. */
export interface TorchvisionResnetMapOptions {
  /**
   * Prefix of the ResNet's keys (`module.`, `img_encoder.`, `model.visual.`). By default it
   * is whatever precedes the stem's `conv1.weight`; keys without it (a text tower in the
   * same checkpoint) are ignored.
   */
  prefix?: string;
  /** Drop `fc.weight`/`fc.bias` (a feature extractor, or a head to train from scratch). Default false. */
  dropFc?: boolean;
}

/** The mapped weights and what the mapping changed. */
export interface TorchvisionResnetMapResult {
  /** Weights under lightclip's (= torchvision's) names; new tensors are owned by the caller. */
  stateDict: StateDict;
  /** Keys left out (`fc.*` when dropped). */
  dropped: string[];
  /** Checkpoint keys outside the prefix, not part of the ResNet. */
  ignored: string[];
  /** `num_batches_tracked` buffers added with value 0 (pre-0.4.1 checkpoints). */
  added: string[];
  /** The prefix that was stripped ('' when none). */
  strippedPrefix: string;
}

/** The prefix before the stem conv (`conv1.weight` not inside a `layerK` block), or ''. */
function detectPrefix(keys: readonly string[]): string {
  const stem = keys.find((k) => k.endsWith('conv1.weight') && !/layer\d+\./.test(k) && (k === 'conv1.weight' || k.endsWith('.conv1.weight')));
  return stem ? stem.slice(0, -'conv1.weight'.length) : '';
}

/**
 * Maps a torchvision ResNet state dict onto lightclip's ResNet names.
 * @param sd torchvision weights as tfjs tensors (from `readWeightsAsTensors`).
 * @returns the renamed dict; tensors of `sd` are reused, added buffers are new.
 * @example
 * const { stateDict } = torchvisionResnetToLightclip(await readWeightsAsTensors('resnet50.pth'), { dropFc: true });
 */
export function torchvisionResnetToLightclip(sd: StateDict, options: TorchvisionResnetMapOptions = {}): TorchvisionResnetMapResult {
  const keys = Object.keys(sd);
  const prefix = options.prefix ?? detectPrefix(keys);
  const out: StateDict = {};
  const dropped: string[] = [];
  const ignored: string[] = [];
  const added: string[] = [];
  for (const key of keys) {
    if (!key.startsWith(prefix)) {
      ignored.push(key);
      continue;
    }
    const name = key.slice(prefix.length);
    if (options.dropFc && (name === 'fc.weight' || name === 'fc.bias')) {
      dropped.push(name);
      continue;
    }
    out[name] = sd[key]!;
  }
  for (const name of Object.keys(out)) {
    if (!name.endsWith('.running_mean')) continue;
    const nbt = `${name.slice(0, -'running_mean'.length)}num_batches_tracked`;
    if (!(nbt in out)) {
      out[nbt] = tf.scalar(0, 'int32');
      added.push(nbt);
    }
  }
  return { stateDict: out, dropped, ignored, added, strippedPrefix: prefix };
}

/** What {@link loadTorchvisionResnet} did. */
export interface TorchvisionResnetLoadReport {
  /** Keys copied into the model. */
  loaded: string[];
  /** Checkpoint keys not loaded (`fc.*` for a model without, or with a differently sized, `fc`). */
  dropped: string[];
  /** Checkpoint keys outside the ResNet's prefix. */
  ignored: string[];
  /** Buffers filled in (missing `num_batches_tracked`). */
  added: string[];
}

/**
 * Loads torchvision ResNet weights into `model`, every key matched. A model without `fc`
 * (`numClasses: 0`) or with an `fc` of another size (train-CLIP's `Linear(2048, 768)`) skips
 * the checkpoint's classifier and keeps its own; anything else must match exactly.
 * @throws StateDictError listing missing, unexpected and mis-shaped keys.
 */
export function loadTorchvisionResnet(model: ResNet, sd: StateDict, options: Omit<TorchvisionResnetMapOptions, 'dropFc'> = {}): TorchvisionResnetLoadReport {
  const probe = torchvisionResnetToLightclip(sd, options);
  const fcW = probe.stateDict['fc.weight'];
  const keepFc = model.fc !== null && fcW !== undefined && fcW.shape[0] === model.fc.outFeatures && fcW.shape[1] === model.fc.inFeatures;
  const mapped = keepFc ? probe : { ...probe, ...dropFc(probe.stateDict) };
  const own = model.stateDict();
  // The model's own fc is kept (not loaded) when the checkpoint's classifier was dropped.
  const missing = Object.keys(own).filter((k) => !(k in mapped.stateDict) && (keepFc || !k.startsWith('fc.')));
  const unexpected = Object.keys(mapped.stateDict).filter((k) => !(k in own));
  try {
    if (missing.length || unexpected.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing key(s): ${formatKeys(missing)}`);
      if (unexpected.length) parts.push(`unexpected key(s): ${formatKeys(unexpected)}`);
      throw new StateDictError(
        `Error(s) in loading torchvision weights into ResNet: ${parts.join('; ')} (is the checkpoint a ResNet of the same depth and width?).`,
        missing,
        unexpected,
        [],
      );
    }
    // Shapes are still checked by loadStateDict (a mismatch throws a StateDictError).
    model.loadStateDict(mapped.stateDict, { strict: false });
    return { loaded: Object.keys(mapped.stateDict), dropped: mapped.dropped, ignored: mapped.ignored, added: mapped.added };
  } finally {
    for (const k of mapped.added) mapped.stateDict[k]?.dispose();
  }
}

function formatKeys(keys: string[], max = 20): string {
  const shown = keys.slice(0, max).map((k) => `"${k}"`).join(', ');
  return keys.length > max ? `${shown} and ${keys.length - max} more` : shown;
}

function dropFc(sd: StateDict): { stateDict: StateDict; dropped: string[] } {
  const stateDict: StateDict = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(sd)) {
    if (k === 'fc.weight' || k === 'fc.bias') dropped.push(k);
    else stateDict[k] = v;
  }
  return { stateDict, dropped };
}
