import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { MisconfigurationError, showValue } from '../core/errors.js';
import type { Generator } from '../core/random.js';
import { decodeKernel, RANDOM_RESIZED_CROP_DRAWS, type CropInterpolation, type DecodedImage, type TransformPlan } from './decodeKernel.js';

/** OpenAI CLIP's per-channel image mean (RGB), used by train-CLIP, open_clip and CoreNet. */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
/** OpenAI CLIP's per-channel image standard deviation (RGB). */
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** An image to transform: a file path or the encoded file's bytes. */
export type ImageInput = string | Uint8Array;

/** Normalisation constants (CLIP's by default). */
export interface NormalizeOptions {
  mean?: [number, number, number];
  std?: [number, number, number];
}

/** Options of {@link randomResizedCrop}. */
export interface RandomResizedCropOptions extends NormalizeOptions {
  /** Crop area as a fraction of the image area; train-CLIP: `[resize_ratio, 1]` = [0.75, 1]. */
  scale?: [number, number];
  /** Crop aspect ratio range (w/h); [1, 1] gives square crops. */
  ratio?: [number, number];
  /**
   * Resampling of the crop. Default 'bilinear': torchvision's `RandomResizedCrop` default,
   * which train-CLIP uses (it passes no interpolation); open_clip's training transform passes
   * 'bicubic'.
   */
  interpolation?: CropInterpolation;
}

/**
 * An image transform whose random parameters are drawn by `plan()`, so the decode can run
 * anywhere (a worker) while the randomness stays on the caller's seeded generator.
 */
export interface ImageTransform {
  /** Output side in pixels (outputs are size×size×3). */
  readonly size: number;
  /** Draws this application's random parameters (if any) and returns a serialisable plan. */
  plan(): TransformPlan;
  /** `plan()` then decode on this thread; returns `[size, size, 3]` float32 (NHWC without N). */
  apply(input: ImageInput): Promise<Float32Array>;
}

function checkSize(size: number, flag: string): void {
  if (!Number.isInteger(size) || size < 1) {
    throw new MisconfigurationError(`\`${flag}\` must be a positive integer (pixels), got ${showValue(size)}.`);
  }
}

function checkRange(range: [number, number], flag: string, what: string): void {
  if (!Array.isArray(range) || range.length !== 2 || !(range[0] > 0) || !(range[0] <= range[1])) {
    throw new MisconfigurationError(`\`${flag}\` must be [lo, hi] with 0 < lo <= hi (${what}), got ${showValue(range)}.`);
  }
}

/**
 * torchvision's `RandomResizedCrop(size, scale, ratio, interpolation)`: up to 10 attempts at a
 * crop of random area and aspect ratio inside the image, else the largest centred crop within
 * the ratio range; the crop is resized to size×size (bilinear by default, as torchvision and
 * train-CLIP; see {@link RandomResizedCropOptions.interpolation}), then CLIP-normalised. Defaults are train-CLIP's scale (0.75, 1) with square crops.
 *
 * Randomness comes only from `rng`: every `plan()` draws exactly 40 uniforms, whatever the
 * image size, so the stream's position never depends on image contents.
 */
export function randomResizedCrop(size: number, options: RandomResizedCropOptions, rng: Generator): ImageTransform {
  checkSize(size, '--image_size');
  const scale: [number, number] = options.scale ?? [0.75, 1];
  const ratio: [number, number] = options.ratio ?? [1, 1];
  checkRange(scale, '--resize_ratio', 'scale: crop area fraction');
  if (scale[1] > 1) throw new MisconfigurationError(`\`--resize_ratio\` scale upper bound must be <= 1, got ${showValue(scale)}.`);
  checkRange(ratio, 'ratio', 'crop aspect ratio');
  const interpolation = options.interpolation ?? 'bilinear';
  if (interpolation !== 'bilinear' && interpolation !== 'bicubic') {
    throw new MisconfigurationError(`RandomResizedCrop \`interpolation\` must be 'bilinear' or 'bicubic', got ${showValue(interpolation)}.`);
  }
  const mean = options.mean ?? CLIP_MEAN;
  const std = options.std ?? CLIP_STD;
  const plan = (): TransformPlan => {
    const draws: number[] = [];
    for (let i = 0; i < RANDOM_RESIZED_CROP_DRAWS; i++) draws.push(rng.random());
    return { kind: 'randomResizedCrop', size, scale: [scale[0], scale[1]], ratio: [ratio[0], ratio[1]], draws, interpolation, mean, std };
  };
  return { size, plan, apply: async (input) => (await applyTransformPlan(input, plan())).data };
}

/**
 * CLIP's evaluation preprocessing: Resize(size) of the shorter side (bicubic), CenterCrop(size),
 * normalise. An image whose shorter side already equals `size` is cropped without resampling.
 */
export function clipEvalTransform(size: number, options: NormalizeOptions = {}): ImageTransform {
  checkSize(size, '--image_size');
  const mean = options.mean ?? CLIP_MEAN;
  const std = options.std ?? CLIP_STD;
  const plan = (): TransformPlan => ({ kind: 'eval', size, mean, std });
  return { size, plan, apply: async (input) => (await applyTransformPlan(input, plan())).data };
}

/**
 * Runs a plan on this thread (file read, sharp decode, transform, normalise). Throws what
 * sharp throws for a corrupt or unsupported file.
 */
export async function applyTransformPlan(input: ImageInput, plan: TransformPlan): Promise<DecodedImage> {
  const bytes = typeof input === 'string' ? await readFile(input) : input;
  return decodeKernel(sharp, bytes, plan);
}
