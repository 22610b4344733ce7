import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Generator } from '../../core/random.js';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  applyPhotometric,
  CLIP_ROCKET_LOCAL_VIEW,
  drawPhotometric,
  flipHorizontal,
  gaussianBlur,
  gaussianKernel,
  toGrayscale,
} from '../../datamodules/augment/photometric.js';

const px = (...v: number[]) => Float32Array.from(v);
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol);
};

describe('photometric ops (torchvision definitions on [0, 1] floats)', () => {
  it('brightness scales and clamps', () => {
    const img = px(0.2, 0.5, 0.9);
    adjustBrightness(img, 1.5);
    close(img, [0.3, 0.75, 1]);
  });

  it('contrast blends with the mean luma of the whole image', () => {
    const img = px(0, 0, 0, 1, 1, 1); // mean luma (0 + 1)/2 = 0.5 (weights sum to 0.9999)
    adjustContrast(img, 0.5);
    const m = 0.9999 / 2;
    close(img, [0.5 * m, 0.5 * m, 0.5 * m, 0.5 + 0.5 * m, 0.5 + 0.5 * m, 0.5 + 0.5 * m]);
  });

  it('saturation 0 is grayscale; 2 pushes away from the luma', () => {
    const a = px(0.8, 0.2, 0.4);
    const y = 0.2989 * 0.8 + 0.587 * 0.2 + 0.114 * 0.4;
    adjustSaturation(a, 0);
    close(a, [y, y, y]);
    const b = px(0.6, 0.5, 0.4);
    const yb = 0.2989 * 0.6 + 0.587 * 0.5 + 0.114 * 0.4;
    adjustSaturation(b, 2);
    close(b, [2 * 0.6 - yb, 2 * 0.5 - yb, 2 * 0.4 - yb]);
  });

  it('hue rotates red → green → blue by thirds and keeps grays', () => {
    const img = px(1, 0, 0, 0.5, 0.5, 0.5);
    adjustHue(img, 1 / 3);
    close(img, [0, 1, 0, 0.5, 0.5, 0.5], 1e-6);
    adjustHue(img, 1 / 3);
    close(img.subarray(0, 3), [0, 0, 1], 1e-6);
    adjustHue(img, -2 / 3);
    close(img.subarray(0, 3), [1, 0, 0], 1e-6);
  });

  it('grayscale writes the luma to all three channels', () => {
    const img = px(1, 0, 0);
    toGrayscale(img);
    close(img, [0.2989, 0.2989, 0.2989]);
  });

  it('flip mirrors each row', () => {
    const img = px(1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6); // 2×3
    flipHorizontal(img, 2, 3);
    close(img, [3, 3, 3, 2, 2, 2, 1, 1, 1, 6, 6, 6, 5, 5, 5, 4, 4, 4]);
  });

  it('blur: taps follow exp(−x²/2σ²) and sum to 1; a constant image stays constant; an impulse spreads as the kernel', () => {
    const k = gaussianKernel(1);
    expect(k.length).toBe(7);
    expect(k.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(k[4]! / k[3]!).toBeCloseTo(Math.exp(-0.5), 6);
    const flat = new Float32Array(5 * 5 * 3).fill(0.25);
    close(gaussianBlur(flat, 5, 5, 1.3), flat, 1e-6);
    const imp = new Float32Array(9 * 9 * 3);
    imp[(4 * 9 + 4) * 3] = 1;
    const out = gaussianBlur(imp, 9, 9, 0.8);
    const k8 = gaussianKernel(0.8);
    const r = (k8.length - 1) / 2;
    expect(out[(4 * 9 + 4) * 3]).toBeCloseTo(k8[r]! * k8[r]!, 6);
    expect(out[(4 * 9 + 5) * 3]).toBeCloseTo(k8[r]! * k8[r + 1]!, 6);
    expect(out[(4 * 9 + 4) * 3 + 1]).toBe(0);
  });
});

describe('drawPhotometric (clip-rocket local views)', () => {
  it('matches the probabilities and ranges over 10,000 draws, and always consumes the same randomness', () => {
    const rng = new Generator(123);
    const n = 10_000;
    let jitter = 0;
    let gray = 0;
    let blur = 0;
    let flip = 0;
    const first = new Array(4).fill(0);
    let sigmaMin = Infinity;
    let sigmaMax = -Infinity;
    let bMin = Infinity;
    let bMax = -Infinity;
    let hMin = Infinity;
    let hMax = -Infinity;
    for (let i = 0; i < n; i++) {
      const p = drawPhotometric(CLIP_ROCKET_LOCAL_VIEW, rng);
      if (p.jitter) {
        jitter++;
        first[p.jitter.order[0]!]++;
        expect([...p.jitter.order].sort()).toEqual([0, 1, 2, 3]);
        bMin = Math.min(bMin, p.jitter.brightness);
        bMax = Math.max(bMax, p.jitter.brightness);
        hMin = Math.min(hMin, p.jitter.hue);
        hMax = Math.max(hMax, p.jitter.hue);
      }
      if (p.grayscale) gray++;
      if (p.blurSigma !== null) {
        blur++;
        sigmaMin = Math.min(sigmaMin, p.blurSigma);
        sigmaMax = Math.max(sigmaMax, p.blurSigma);
      }
      if (p.flip) flip++;
    }
    // 4 binomial standard deviations at n = 10,000 are below 0.02.
    expect(Math.abs(jitter / n - 0.8)).toBeLessThan(0.02);
    expect(Math.abs(gray / n - 0.2)).toBeLessThan(0.02);
    expect(Math.abs(blur / n - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(flip / n - 0.5)).toBeLessThan(0.02);
    for (const c of first) expect(Math.abs(c / jitter - 0.25)).toBeLessThan(0.025);
    expect(sigmaMin).toBeGreaterThanOrEqual(0.1);
    expect(sigmaMax).toBeLessThanOrEqual(2);
    expect(sigmaMax - sigmaMin).toBeGreaterThan(1.85);
    expect(bMin).toBeGreaterThanOrEqual(0.6);
    expect(bMax).toBeLessThanOrEqual(1.4);
    expect(bMax - bMin).toBeGreaterThan(0.75);
    expect(hMin).toBeGreaterThanOrEqual(-0.1);
    expect(hMax).toBeLessThanOrEqual(0.1);
    // The same seed gives the same plans, and plans never depend on earlier outcomes' branches.
    const a = new Generator(5);
    const b = new Generator(5);
    for (let i = 0; i < 50; i++) drawPhotometric({ ...CLIP_ROCKET_LOCAL_VIEW, jitterProb: 0 }, a);
    for (let i = 0; i < 50; i++) drawPhotometric(CLIP_ROCKET_LOCAL_VIEW, b);
    expect(a.random()).toBe(b.random());
  });
});

const python = '/usr/bin/python3';
const hasTorchvision = spawnSync(python, ['-c', 'import torchvision'], { encoding: 'utf8' }).status === 0;
if (!hasTorchvision) console.log('photometric torchvision comparison skipped: /usr/bin/python3 cannot import torchvision (apt-get install python3-torchvision)');

describe.skipIf(!hasTorchvision)('against torchvision.transforms.functional on float tensors', () => {
  it('brightness, contrast, saturation, hue, grayscale and flip agree', () => {
    const h = 4;
    const w = 5;
    const rng = new Generator(9);
    const img = Float32Array.from({ length: h * w * 3 }, () => rng.random());
    const plan = { jitter: { order: [3, 1, 0, 2], brightness: 1.3, contrast: 0.7, saturation: 1.6, hue: 0.07 }, grayscale: false, blurSigma: null, flip: true };
    const ours = applyPhotometric(Float32Array.from(img), h, w, plan);
    const gray = Float32Array.from(img);
    toGrayscale(gray);
    const script = `
import json, sys, torch
import torchvision.transforms.functional as TF
d = json.loads(sys.stdin.read())
x = torch.tensor(d['img'], dtype=torch.float32).reshape(${h}, ${w}, 3).permute(2, 0, 1)
y = TF.adjust_hue(x, 0.07); y = TF.adjust_contrast(y, 0.7); y = TF.adjust_brightness(y, 1.3); y = TF.adjust_saturation(y, 1.6); y = TF.hflip(y)
g = TF.rgb_to_grayscale(x, num_output_channels=3)
print(json.dumps({'y': y.permute(1, 2, 0).reshape(-1).tolist(), 'g': g.permute(1, 2, 0).reshape(-1).tolist()}))
`;
    const r = spawnSync(python, ['-c', script], { input: JSON.stringify({ img: Array.from(img) }), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as { y: number[]; g: number[] };
    close(ours, ref.y, 2e-5);
    close(gray, ref.g, 2e-6);
  });
});
