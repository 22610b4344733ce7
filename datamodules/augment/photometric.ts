import type { Generator } from '../../core/random.js';

/**
 * The photometric augmentations of SimCLR-style multi-view pipelines (clip-rocket's local
 * views, SLIP's SSL views): torchvision's ColorJitter, RandomGrayscale, RandomApply'd
 * Gaussian blur and RandomHorizontalFlip, on float RGB images in [0, 1], `[H, W, 3]`
 * row-major (before mean/std normalisation).
 *
 * The random parameters are drawn first (`drawPhotometric`, on the caller's seeded
 * generator) into a plain serialisable object, and applied later (`applyPhotometric`),
 * so the pixels can be computed in a decode worker while the randomness stays reproducible.
 *
 * Definitions follow torchvision's tensor functional ops (`adjust_brightness` … on floats:
 * blends clamped to [0, 1], luma weights 0.2989/0.587/0.114, hue through HSV). clip-rocket
 * runs them on PIL images, which round to 8 bits after every op and blur with PIL's
 * box-blur approximation of a Gaussian of standard deviation `radius`; here every op stays
 * in float32 and the blur is an exact sampled Gaussian (radius ⌈3σ⌉, reflected borders).
 */

/** ColorJitter strengths: brightness/contrast/saturation in [max(0, 1−x), 1+x], hue in [−x, x]. */
export interface ColorJitterStrength {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** Probabilities and ranges of one view's photometric pipeline. */
export interface PhotometricOptions {
  /** ColorJitter strengths (clip-rocket: 0.4, 0.4, 0.4, 0.1). */
  jitter: ColorJitterStrength;
  /** Probability that ColorJitter is applied (0.8). */
  jitterProb: number;
  /** RandomGrayscale probability (0.2). */
  grayscaleProb: number;
  /** Probability of the Gaussian blur (0.5) and its σ range ([0.1, 2]). */
  blurProb: number;
  blurSigma: [number, number];
  /** Probability of a horizontal flip (0.5). */
  flipProb: number;
}

/** clip-rocket's local-view pipeline (after RandomResizedCrop(224, scale (0.08, 1))). */
export const CLIP_ROCKET_LOCAL_VIEW: PhotometricOptions = {
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
  jitterProb: 0.8,
  grayscaleProb: 0.2,
  blurProb: 0.5,
  blurSigma: [0.1, 2],
  flipProb: 0.5,
};

/** The drawn parameters of one application. */
export interface PhotometricPlan {
  /** ColorJitter: the order of the four ops (0 brightness, 1 contrast, 2 saturation, 3 hue) and their factors; null when not applied. */
  jitter: { order: number[]; brightness: number; contrast: number; saturation: number; hue: number } | null;
  grayscale: boolean;
  /** σ of the blur, or null. */
  blurSigma: number | null;
  flip: boolean;
}

/** Uniforms one plan consumes, whatever is applied, so the generator's position never depends on outcomes. */
export const PHOTOMETRIC_DRAWS = 14;

function factorRange(x: number): [number, number] {
  return [Math.max(0, 1 - x), 1 + x];
}

/** Draws one application's parameters (always exactly {@link PHOTOMETRIC_DRAWS} uniforms). */
export function drawPhotometric(options: PhotometricOptions, rng: Generator): PhotometricPlan {
  const u = Array.from({ length: PHOTOMETRIC_DRAWS }, () => rng.random());
  // A random permutation of the four ops (Fisher–Yates on 3 draws), as torchvision's randperm(4).
  const order = [0, 1, 2, 3];
  for (let i = 3; i > 0; i--) {
    const j = Math.floor(u[1 + (3 - i)]! * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const lerp = ([lo, hi]: [number, number], t: number) => lo + (hi - lo) * t;
  const j = options.jitter;
  const jitter =
    u[0]! < options.jitterProb
      ? {
          order,
          brightness: lerp(factorRange(j.brightness), u[4]!),
          contrast: lerp(factorRange(j.contrast), u[5]!),
          saturation: lerp(factorRange(j.saturation), u[6]!),
          hue: lerp([-j.hue, j.hue], u[7]!),
        }
      : null;
  return {
    jitter,
    grayscale: u[8]! < options.grayscaleProb,
    blurSigma: u[9]! < options.blurProb ? lerp(options.blurSigma, u[10]!) : null,
    flip: u[11]! < options.flipProb,
  };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** torchvision's `rgb_to_grayscale` luma of one pixel. */
export function luma(r: number, g: number, b: number): number {
  return 0.2989 * r + 0.587 * g + 0.114 * b;
}

/** `clamp(f·img + (1 − f)·other)`, other a constant (brightness: 0, contrast: mean luma). */
function blendConstant(img: Float32Array, f: number, other: number): void {
  for (let i = 0; i < img.length; i++) img[i] = clamp01(f * img[i]! + (1 - f) * other);
}

export function adjustBrightness(img: Float32Array, f: number): void {
  blendConstant(img, f, 0);
}

export function adjustContrast(img: Float32Array, f: number): void {
  let sum = 0;
  for (let i = 0; i < img.length; i += 3) sum += luma(img[i]!, img[i + 1]!, img[i + 2]!);
  blendConstant(img, f, sum / (img.length / 3));
}

export function adjustSaturation(img: Float32Array, f: number): void {
  for (let i = 0; i < img.length; i += 3) {
    const y = luma(img[i]!, img[i + 1]!, img[i + 2]!);
    for (let c = 0; c < 3; c++) img[i + c] = clamp01(f * img[i + c]! + (1 - f) * y);
  }
}

/** Rotates hue by `shift` turns (in [−0.5, 0.5]) through HSV, as torchvision's `adjust_hue`. */
export function adjustHue(img: Float32Array, shift: number): void {
  for (let i = 0; i < img.length; i += 3) {
    const r = img[i]!;
    const g = img[i + 1]!;
    const b = img[i + 2]!;
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const delta = max - min;
    const v = max;
    const s = max === 0 ? 0 : delta / max;
    let h = 0;
    if (delta > 0) {
      if (max === r) h = ((g - b) / delta) / 6;
      else if (max === g) h = ((b - r) / delta + 2) / 6;
      else h = ((r - g) / delta + 4) / 6;
    }
    h = (((h + shift) % 1) + 1) % 1;
    const h6 = h * 6;
    const k = Math.floor(h6) % 6;
    const f = h6 - Math.floor(h6);
    const p = v * (1 - s);
    const q = v * (1 - s * f);
    const t = v * (1 - s * (1 - f));
    const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][k]!;
    img[i] = clamp01(rgb[0]!);
    img[i + 1] = clamp01(rgb[1]!);
    img[i + 2] = clamp01(rgb[2]!);
  }
}

export function toGrayscale(img: Float32Array): void {
  for (let i = 0; i < img.length; i += 3) {
    const y = luma(img[i]!, img[i + 1]!, img[i + 2]!);
    img[i] = y;
    img[i + 1] = y;
    img[i + 2] = y;
  }
}

/** Normalised 1-D Gaussian taps for σ, radius ⌈3σ⌉. */
export function gaussianKernel(sigma: number): Float32Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = ((i % period) + period) % period;
  if (m >= n) m = period - m;
  return m;
}

/** Separable Gaussian blur with reflected borders (torchvision's `gaussian_blur` padding). */
export function gaussianBlur(img: Float32Array, height: number, width: number, sigma: number): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(img.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let t = -r; t <= r; t++) acc += k[t + r]! * img[(y * width + reflect(x + t, width)) * 3 + c]!;
        tmp[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Float32Array(img.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let t = -r; t <= r; t++) acc += k[t + r]! * tmp[(reflect(y + t, height) * width + x) * 3 + c]!;
        out[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  return out;
}

export function flipHorizontal(img: Float32Array, height: number, width: number): void {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width >> 1; x++) {
      const a = (y * width + x) * 3;
      const b = (y * width + (width - 1 - x)) * 3;
      for (let c = 0; c < 3; c++) [img[a + c], img[b + c]] = [img[b + c]!, img[a + c]!];
    }
  }
}

/**
 * Applies a plan to an `[H, W, 3]` image in [0, 1], in torchvision's order: ColorJitter
 * (its ops in the drawn order), grayscale, blur, flip. Returns the result (the input array
 * is modified unless the blur allocates a new one).
 */
export function applyPhotometric(img: Float32Array, height: number, width: number, plan: PhotometricPlan): Float32Array {
  if (img.length !== height * width * 3) throw new Error(`applyPhotometric: ${img.length} values are not ${height}×${width}×3`);
  let out = img;
  if (plan.jitter) {
    const j = plan.jitter;
    for (const op of j.order) {
      if (op === 0) adjustBrightness(out, j.brightness);
      else if (op === 1) adjustContrast(out, j.contrast);
      else if (op === 2) adjustSaturation(out, j.saturation);
      else adjustHue(out, j.hue);
    }
  }
  if (plan.grayscale) toGrayscale(out);
  if (plan.blurSigma !== null) out = gaussianBlur(out, height, width, plan.blurSigma);
  if (plan.flip) flipHorizontal(out, height, width);
  return out;
}
