import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { Generator } from '../../core/random.js';
import { RANDOM_RESIZED_CROP_DRAWS, type TransformPlan } from '../../datamodules/decodeKernel.js';
import { CLIP_MEAN, CLIP_STD, applyTransformPlan, clipEvalTransform, randomResizedCrop } from '../../datamodules/transforms.js';
import { fromRaw, noise, norm, paint, solid } from './helpers.js';

/** Expected normalised output of 8-bit pixels `raw` (w×h) cropped at (left, top) to size×size. */
function expectedCrop(raw: Uint8Array, w: number, left: number, top: number, size: number): Float32Array {
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = norm(raw[((y + top) * w + x + left) * 3 + c]!, c);
    }
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Pixel (x, y) of an NHWC-without-N output, de-normalised back to 0..255. */
function rgbAt(data: Float32Array, size: number, x: number, y: number): number[] {
  return [0, 1, 2].map((c) => (data[(y * size + x) * 3 + c]! * CLIP_STD[c]! + CLIP_MEAN[c]!) * 255);
}

describe('image transforms', () => {
  it('solid colour: shape [size, size, 3] and hand-computed CLIP normalisation (both transforms)', async () => {
    const png = await solid(40, 30, [255, 128, 0]);
    // (255/255 - 0.48145466) / 0.26862954, (128/255 - 0.4578275) / 0.26130258, (0 - 0.40821073) / 0.27577711
    const expected = [1.9303363, 0.1688972, -1.4802198];
    for (const t of [clipEvalTransform(16), randomResizedCrop(16, {}, new Generator(3))]) {
      const out = await t.apply(png);
      expect(out).toBeInstanceOf(Float32Array);
      expect(out.length).toBe(16 * 16 * 3);
      for (let i = 0; i < out.length; i++) expect(out[i]).toBeCloseTo(expected[i % 3]!, 5);
    }
  });

  it('eval transform of an image already size×size returns its exact pixels (no resampling)', async () => {
    const raw = noise(12, 12, 7);
    const out = await clipEvalTransform(12).apply(await fromRaw(12, 12, raw));
    expect(maxAbsDiff(out, expectedCrop(raw, 12, 0, 0, 12))).toBeLessThan(1e-6);
  });

  it('eval centre crop without resize rounds the offset half to even, as torchvision', async () => {
    // 13 wide, 10 high, size 10: shorter side already 10, crop left = round(1.5) = 2.
    const raw = noise(13, 10, 9);
    const out = await clipEvalTransform(10).apply(await fromRaw(13, 10, raw));
    expect(maxAbsDiff(out, expectedCrop(raw, 13, 2, 0, 10))).toBeLessThan(1e-6);
    // 10 wide, 15 high: top = round(2.5) = 2.
    const tall = noise(10, 15, 11);
    const out2 = await clipEvalTransform(10).apply(await fromRaw(10, 15, tall));
    expect(maxAbsDiff(out2, expectedCrop(tall, 10, 0, 2, 10))).toBeLessThan(1e-6);
  });

  it('eval resize of the shorter side then centre crop: geometry of a left-red/right-blue image', async () => {
    // 40×20 → resize to 20×10 → centre crop 10×10 at x 5..14: the red/blue edge sits at column 5.
    const raw = paint(40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
    const out = await clipEvalTransform(10).apply(await fromRaw(40, 20, raw));
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 10; x++) {
        const [r, , b] = rgbAt(out, 10, x, y);
        if (x <= 3) expect(r! - b!).toBeGreaterThan(200); // red, away from the bicubic seam
        if (x >= 6) expect(b! - r!).toBeGreaterThan(200);
      }
    }
    // Red | green | blue thirds, 60×20 → 30×10, crop x 10..19 = the green third only.
    const thirds = paint(60, 20, (x) => (x < 20 ? [255, 0, 0] : x < 40 ? [0, 255, 0] : [0, 0, 255]));
    const g = await clipEvalTransform(10).apply(await fromRaw(60, 20, thirds));
    for (let y = 0; y < 10; y++) {
      for (let x = 1; x < 9; x++) {
        const [r, gg, b] = rgbAt(g, 10, x, y);
        expect(gg!).toBeGreaterThan(250);
        expect(Math.max(r!, b!)).toBeLessThan(5);
      }
    }
  });

  it('converts as PIL convert("RGB"): greyscale expanded, alpha dropped without compositing', async () => {
    const grey = await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: 77, g: 77, b: 77 } } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await clipEvalTransform(10).apply(grey);
    for (let i = 0; i < g.length; i++) expect(g[i]).toBeCloseTo(norm(77, i % 3), 5);
    const rgba = await sharp({ create: { width: 10, height: 10, channels: 4, background: { r: 200, g: 10, b: 30, alpha: 0 } } })
      .png()
      .toBuffer();
    const a = await clipEvalTransform(10).apply(rgba);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(norm([200, 10, 30][i % 3]!, i % 3), 5);
  });

  it('randomResizedCrop draws exactly 40 uniforms per plan and is reproducible from the seed', () => {
    const g1 = new Generator(5);
    const t = randomResizedCrop(16, { scale: [0.5, 1], ratio: [0.75, 4 / 3] }, g1);
    const p1 = t.plan();
    const p2 = t.plan();
    expect(p1.kind === 'randomResizedCrop' && p1.draws.length).toBe(RANDOM_RESIZED_CROP_DRAWS);
    expect(p1).not.toEqual(p2);
    const g2 = new Generator(5);
    for (let i = 0; i < 2 * RANDOM_RESIZED_CROP_DRAWS; i++) g2.random();
    expect(g1.getState()).toEqual(g2.getState());
    expect(randomResizedCrop(16, { scale: [0.5, 1], ratio: [0.75, 4 / 3] }, new Generator(5)).plan()).toEqual(p1);
  });

  it('randomResizedCrop picks torchvision crop boxes (accepted attempt, and centre fallback)', async () => {
    const raw = noise(64, 64, 3);
    const png = await fromRaw(64, 64, raw);
    const base = { kind: 'randomResizedCrop' as const, size: 32, ratio: [1, 1] as [number, number], mean: CLIP_MEAN, std: CLIP_STD };
    // Attempt 1: area 0.25·4096 → 32×32; top = floor(0·33) = 0, left = floor(0.999·33) = 32.
    const draws = new Array<number>(40).fill(0.5);
    draws.splice(0, 4, 0, 0.5, 0, 0.999);
    const plan: TransformPlan = { ...base, scale: [0.25, 1], draws };
    const out = await applyTransformPlan(png, plan);
    expect(maxAbsDiff(out.data, expectedCrop(raw, 64, 32, 0, 32))).toBeLessThan(1e-6);

    // 40×30 landscape, square crops of ≥ 99% of the area never fit: centre fallback 30×30 at x = 5.
    const land = noise(40, 30, 4);
    const fallback: TransformPlan = { ...base, size: 30, scale: [0.99, 1], draws: new Array<number>(40).fill(0.3) };
    const fb = await applyTransformPlan(await fromRaw(40, 30, land), fallback);
    expect(maxAbsDiff(fb.data, expectedCrop(land, 40, 5, 0, 30))).toBeLessThan(1e-6);
    // Portrait 30×41: fallback crop 30×30 at y = (41 - 30) // 2 = 5.
    const tall = noise(30, 41, 6);
    const fbTall = await applyTransformPlan(await fromRaw(30, 41, tall), fallback);
    expect(maxAbsDiff(fbTall.data, expectedCrop(tall, 30, 0, 5, 30))).toBeLessThan(1e-6);
  });

  it('rejects bad sizes and ranges naming the flag', () => {
    expect(() => clipEvalTransform(0)).toThrow(MisconfigurationError);
    expect(() => clipEvalTransform(2.5)).toThrow(/--image_size/);
    expect(() => randomResizedCrop(8, { scale: [0.9, 0.5] }, new Generator(0))).toThrow(/--resize_ratio/);
  });

  it('corrupt bytes make the transform reject (the loaders skip such samples)', async () => {
    const junk = new Uint8Array(200).map((_, i) => (i * 37) & 255);
    await expect(clipEvalTransform(8).apply(junk)).rejects.toThrow();
  });
});
