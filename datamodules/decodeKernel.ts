import type { Sharp, SharpOptions } from 'sharp';

/** The part of sharp's default export the kernel calls. */
export type SharpFactory = (input: Uint8Array, options?: SharpOptions) => Sharp;

/**
 * A serialisable description of one image transform, with its random draws already made,
 * so the same plan gives the same pixels on the main thread and in any worker.
 */
export type TransformPlan =
  | {
      kind: 'randomResizedCrop';
      /** Output side (square). */
      size: number;
      /** Range of the crop's area as a fraction of the image's. */
      scale: [number, number];
      /** Range of the crop's aspect ratio (width / height). */
      ratio: [number, number];
      /** 40 uniforms in [0, 1): 4 per attempt (area, log-ratio, top, left) × 10 attempts. */
      draws: number[];
      mean: [number, number, number];
      std: [number, number, number];
    }
  | {
      kind: 'eval';
      size: number;
      mean: [number, number, number];
      std: [number, number, number];
    };

/** Output of a transform: `data` is `[height, width, 3]` row-major float32 (NHWC without N). */
export interface DecodedImage {
  data: Float32Array;
  height: number;
  width: number;
}

/** Number of uniforms a randomResizedCrop plan carries (torchvision makes 10 attempts). */
export const RANDOM_RESIZED_CROP_DRAWS = 40;

/**
 * Decodes `bytes` and applies `plan`. This one function is the single source of the pixel
 * pipeline for both the main thread and the decode workers: the worker pool ships its
 * source text (`decodeKernel.toString()`) to `eval` workers, which is why it must stay
 * self-contained — no imports, no module-level helpers, nothing a transpiler would turn
 * into a helper call (no spread, no classes); everything it uses is nested or passed in.
 *
 * Steps follow torchvision on PIL images:
 * 1. `convert('RGB')`: 8-bit sRGB, alpha dropped (not composited), greyscale expanded.
 *    This is done as its own sharp pass, so the later resize never sees an alpha channel
 *    (sharp would resize premultiplied RGBA, which PIL does not do after `convert`).
 * 2. RandomResizedCrop (crop then bicubic resize to size×size), or Resize(size) of the
 *    shorter side (bicubic, long side truncated as `int()`) then CenterCrop(size). A
 *    resize to the size the image already has is skipped, as PIL does.
 * 3. ToTensor + Normalize: `(v / 255 - mean) / std` per channel.
 */
export async function decodeKernel(sharp: SharpFactory, bytes: Uint8Array, plan: TransformPlan): Promise<DecodedImage> {
  // Python's round(): half to even. torchvision rounds crop sizes and offsets with it.
  function roundHalfEven(x: number): number {
    const r = Math.round(x);
    return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  const rgb = await sharp(bytes)
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const srcW = rgb.info.width;
  const srcH = rgb.info.height;
  if (rgb.info.channels !== 3) throw new Error(`expected 3 channels after RGB conversion, got ${rgb.info.channels}`);
  const raw = { raw: { width: srcW, height: srcH, channels: 3 as const } };
  const size = plan.size;

  let pixels: Uint8Array = rgb.data;
  let pixW = srcW;
  let top = 0;
  let left = 0;
  if (plan.kind === 'randomResizedCrop') {
    // torchvision RandomResizedCrop.get_params, with the draws made up front.
    const area = srcW * srcH;
    const logLo = Math.log(plan.ratio[0]);
    const logHi = Math.log(plan.ratio[1]);
    let cw = 0;
    let ch = 0;
    let ci = 0;
    let cj = 0;
    let found = false;
    for (let attempt = 0; attempt < 10 && !found; attempt++) {
      const d = plan.draws;
      const targetArea = area * (plan.scale[0] + (plan.scale[1] - plan.scale[0]) * d[4 * attempt]!);
      const aspect = Math.exp(logLo + (logHi - logLo) * d[4 * attempt + 1]!);
      const w = roundHalfEven(Math.sqrt(targetArea * aspect));
      const h = roundHalfEven(Math.sqrt(targetArea / aspect));
      if (w > 0 && w <= srcW && h > 0 && h <= srcH) {
        ci = Math.floor(d[4 * attempt + 2]! * (srcH - h + 1));
        cj = Math.floor(d[4 * attempt + 3]! * (srcW - w + 1));
        cw = w;
        ch = h;
        found = true;
      }
    }
    if (!found) {
      // Fallback: the largest centred crop whose aspect ratio is within range.
      const inRatio = srcW / srcH;
      const lo = Math.min(plan.ratio[0], plan.ratio[1]);
      const hi = Math.max(plan.ratio[0], plan.ratio[1]);
      if (inRatio < lo) {
        cw = srcW;
        ch = roundHalfEven(cw / lo);
      } else if (inRatio > hi) {
        ch = srcH;
        cw = roundHalfEven(ch * hi);
      } else {
        cw = srcW;
        ch = srcH;
      }
      ci = Math.floor((srcH - ch) / 2);
      cj = Math.floor((srcW - cw) / 2);
    }
    if (cw === size && ch === size) {
      top = ci;
      left = cj;
    } else {
      const out = await sharp(rgb.data, raw)
        .extract({ left: cj, top: ci, width: cw, height: ch })
        .resize(size, size, { kernel: 'cubic', fit: 'fill' })
        .raw()
        .toBuffer();
      pixels = out;
      pixW = size;
    }
  } else {
    const short = Math.min(srcW, srcH);
    const long = Math.max(srcW, srcH);
    let newW = srcW;
    let newH = srcH;
    if (short !== size) {
      const newLong = Math.floor((size * long) / short);
      newW = srcW <= srcH ? size : newLong;
      newH = srcW <= srcH ? newLong : size;
      pixels = await sharp(rgb.data, raw).resize(newW, newH, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer();
    }
    pixW = newW;
    top = roundHalfEven((newH - size) / 2);
    left = roundHalfEven((newW - size) / 2);
  }

  // The crop offset is applied while normalising: no extra copy for the centre crop.
  const luts: Float32Array[] = [];
  for (let c = 0; c < 3; c++) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v / 255 - plan.mean[c]!) / plan.std[c]!;
    luts.push(lut);
  }
  const lr = luts[0]!;
  const lg = luts[1]!;
  const lb = luts[2]!;
  const data = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    let src = ((y + top) * pixW + left) * 3;
    let dst = y * size * 3;
    for (let x = 0; x < size; x++) {
      data[dst++] = lr[pixels[src++]!]!;
      data[dst++] = lg[pixels[src++]!]!;
      data[dst++] = lb[pixels[src++]!]!;
    }
  }
  return { data, height: size, width: size };
}
