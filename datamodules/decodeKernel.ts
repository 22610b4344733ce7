import type { Sharp, SharpOptions } from 'sharp';

/** The part of sharp's default export the kernel calls. */
export type SharpFactory = (input: Uint8Array, options?: SharpOptions) => Sharp;

/** Resampling filters of RandomResizedCrop (PIL's BILINEAR / BICUBIC). */
export type CropInterpolation = 'bilinear' | 'bicubic';

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
      /**
       * Resampling of the crop: 'bilinear' (torchvision's RandomResizedCrop default, what
       * train-CLIP gets) or 'bicubic' (open_clip passes BICUBIC). Absent = bilinear.
       */
      interpolation?: CropInterpolation;
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
 * 2. RandomResizedCrop (crop then bilinear, or bicubic, resize to size×size), or Resize(size) of the
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

  /**
   * PIL's `Image.resize(..., box)` for 8-bit RGB (libImaging/Resample.c): separable
   * convolution, horizontal pass first (over the rows the vertical pass needs), the filter
   * widened by the downscale factor (antialiasing), sample centres at (i + 0.5)·scale,
   * weights normalised, then turned into 22-bit fixed point, and each pass rounded and
   * clipped to 8 bits. sharp (libvips) upsamples on another pixel grid (a mean difference of
   * ~30 levels on noise at 24→32 px), so the kernel does not use it for resampling.
   */
  function pilResample(src: Uint8Array, srcW: number, box: number[], outW: number, outH: number, bicubic: boolean): Uint8Array {
    const PRECISION = 22;
    const support0 = bicubic ? 2 : 1;
    const filter = (x0: number): number => {
      const x = Math.abs(x0);
      if (!bicubic) return x < 1 ? 1 - x : 0;
      const a = -0.5;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    };
    // Per output pixel: first input index, tap count, fixed-point weights (PIL's precompute_coeffs).
    const coeffs = (inSize: number, in0: number, in1: number, outSize: number): { first: Int32Array; count: Int32Array; k: Int32Array; ksize: number } => {
      const scale = (in1 - in0) / outSize;
      const filterscale = Math.max(scale, 1);
      const support = support0 * filterscale;
      const ksize = Math.ceil(support) * 2 + 1;
      const first = new Int32Array(outSize);
      const count = new Int32Array(outSize);
      const k = new Int32Array(outSize * ksize);
      const w = new Float64Array(ksize);
      for (let xx = 0; xx < outSize; xx++) {
        const center = in0 + (xx + 0.5) * scale;
        const ss = 1 / filterscale;
        let xmin = Math.trunc(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        let xmax = Math.trunc(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        let ww = 0;
        for (let x = 0; x < xmax; x++) {
          w[x] = filter((x + xmin - center + 0.5) * ss);
          ww += w[x]!;
        }
        for (let x = 0; x < xmax; x++) {
          const v = ww === 0 ? w[x]! : w[x]! / ww;
          k[xx * ksize + x] = Math.trunc(v * (1 << PRECISION) + (v < 0 ? -0.5 : 0.5));
        }
        first[xx] = xmin;
        count[xx] = xmax;
      }
      return { first, count, k, ksize };
    };
    const clip8 = (v: number): number => {
      const r = Math.floor(v / (1 << PRECISION));
      return r < 0 ? 0 : r > 255 ? 255 : r;
    };
    const [x0, y0, x1, y1] = box as [number, number, number, number];
    const needH = outW !== srcW || x0 !== 0 || x1 !== outW;
    const srcH = src.length / (3 * srcW);
    const needV = outH !== srcH || y0 !== 0 || y1 !== outH;
    const hz = coeffs(srcW, x0, x1, outW);
    const vt = coeffs(srcH, y0, y1, outH);
    const half = 1 << (PRECISION - 1);
    let img = src;
    let imgW = srcW;
    let rowOffset = 0;
    if (needH) {
      const yFirst = vt.first[0]!;
      const yLast = vt.first[outH - 1]! + vt.count[outH - 1]!;
      const rows = yLast - yFirst;
      const tmp = new Uint8Array(rows * outW * 3);
      for (let y = 0; y < rows; y++) {
        const srcRow = (y + yFirst) * srcW * 3;
        for (let xx = 0; xx < outW; xx++) {
          const f = hz.first[xx]!;
          const n = hz.count[xx]!;
          const kb = xx * hz.ksize;
          let r = half;
          let g = half;
          let b = half;
          for (let x = 0; x < n; x++) {
            const kv = hz.k[kb + x]!;
            const p = srcRow + (x + f) * 3;
            r += src[p]! * kv;
            g += src[p + 1]! * kv;
            b += src[p + 2]! * kv;
          }
          const o = (y * outW + xx) * 3;
          tmp[o] = clip8(r);
          tmp[o + 1] = clip8(g);
          tmp[o + 2] = clip8(b);
        }
      }
      img = tmp;
      imgW = outW;
      rowOffset = yFirst;
    }
    if (!needV) {
      if (needH) return img;
      // Neither pass: PIL copies the box (which is then the whole image).
      return src.slice();
    }
    const out = new Uint8Array(outH * imgW * 3);
    for (let yy = 0; yy < outH; yy++) {
      const f = vt.first[yy]! - rowOffset;
      const n = vt.count[yy]!;
      const kb = yy * vt.ksize;
      for (let xx = 0; xx < imgW; xx++) {
        let r = half;
        let g = half;
        let b = half;
        for (let y = 0; y < n; y++) {
          const kv = vt.k[kb + y]!;
          const p = ((y + f) * imgW + xx) * 3;
          r += img[p]! * kv;
          g += img[p + 1]! * kv;
          b += img[p + 2]! * kv;
        }
        const o = (yy * imgW + xx) * 3;
        out[o] = clip8(r);
        out[o + 1] = clip8(g);
        out[o + 2] = clip8(b);
      }
    }
    return out;
  }

  const rgb = await sharp(bytes)
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const srcW = rgb.info.width;
  const srcH = rgb.info.height;
  if (rgb.info.channels !== 3) throw new Error(`expected 3 channels after RGB conversion, got ${rgb.info.channels}`);
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
      // torchvision crops first (F.crop = PIL crop), then resizes the crop: the filter never
      // reaches pixels outside the crop, unlike PIL's resize(box=...) on the whole image.
      const crop = new Uint8Array(cw * ch * 3);
      for (let y = 0; y < ch; y++) crop.set(rgb.data.subarray(((ci + y) * srcW + cj) * 3, ((ci + y) * srcW + cj + cw) * 3), y * cw * 3);
      pixels = pilResample(crop, cw, [0, 0, cw, ch], size, size, plan.interpolation === 'bicubic');
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
      pixels = pilResample(rgb.data, srcW, [0, 0, srcW, srcH], newW, newH, true);
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
