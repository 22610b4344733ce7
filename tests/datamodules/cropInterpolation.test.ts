import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLIP_MEAN, CLIP_STD, applyTransformPlan, clipEvalTransform, randomResizedCrop } from '../../datamodules/transforms.js';
import type { TransformPlan } from '../../datamodules/decodeKernel.js';
import { Generator } from '../../core/random.js';
import { fromRaw, noise } from './helpers.js';

// PIL (Debian python3-pil, a dependency of python3-torch's users) is the independent reference:
// torchvision's RandomResizedCrop on a PIL image is img.crop(box).resize(size, BILINEAR).
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
const pilMissing = probe.status === 0 ? null : `${PYTHON} -c "import PIL" failed`;
if (pilMissing) console.log(`tests/datamodules/cropInterpolation.test.ts: PIL comparison skipped (${pilMissing})`);

const PIL_CROP = `
import sys, json
from PIL import Image
w, h, left, top, cw, ch, size, mode = json.loads(sys.argv[1])
img = Image.frombytes("RGB", (w, h), sys.stdin.buffer.read())
out = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BILINEAR if mode == "bilinear" else Image.BICUBIC)
sys.stdout.buffer.write(out.tobytes())
`;

function pilCrop(raw: Uint8Array, w: number, h: number, box: [number, number, number, number], size: number, mode: string): Uint8Array {
  const r = spawnSync(PYTHON, ['-c', PIL_CROP, JSON.stringify([w, h, ...box, size, mode])], { input: raw });
  if (r.status !== 0) throw new Error(String(r.stderr));
  return new Uint8Array(r.stdout);
}

/** max |lightclip − PIL| in 8-bit levels. */
function maxLevelDiff(out: Float32Array, ref: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const c = i % 3;
    m = Math.max(m, Math.abs((out[i]! * CLIP_STD[c]! + CLIP_MEAN[c]!) * 255 - ref[i]!));
  }
  return m;
}

describe('RandomResizedCrop interpolation', () => {
  it("defaults to bilinear (torchvision's default, train-CLIP's) and records it in the plan", () => {
    const p = randomResizedCrop(16, {}, new Generator(1)).plan();
    expect(p.kind === 'randomResizedCrop' && p.interpolation).toBe('bilinear');
    const q = randomResizedCrop(16, { interpolation: 'bicubic' }, new Generator(1)).plan();
    expect(q.kind === 'randomResizedCrop' && q.interpolation).toBe('bicubic');
    expect(() => randomResizedCrop(16, { interpolation: 'nearest' as 'bilinear' }, new Generator(1))).toThrow(/interpolation/);
  });

  describe.skipIf(pilMissing !== null)("matches PIL's crop + resize (torchvision on PIL images)", () => {
    it("eval Resize(size) of the shorter side: PIL's BICUBIC (OpenAI's preprocessing)", async () => {
      const raw = noise(30, 45, 8);
      const out = (await clipEvalTransform(20).apply(await fromRaw(30, 45, raw)));
      // Resize to 20×30, centre crop 20×20 at top = round((30 − 20)/2) = 5.
      const py = spawnSync(PYTHON, ['-c', 'import sys\nfrom PIL import Image\nimg = Image.frombytes("RGB", (30, 45), sys.stdin.buffer.read())\nsys.stdout.buffer.write(img.resize((20, 30), Image.BICUBIC).crop((0, 5, 20, 25)).tobytes())'], { input: raw });
      expect(maxLevelDiff(out, new Uint8Array(py.stdout))).toBeLessThan(1e-3);
      // Long side truncated as int(): 31×20 → 15×10 (not 16), centre crop x = round(2.5) = 2.
      const wide = noise(31, 20, 5);
      const out2 = await clipEvalTransform(10).apply(await fromRaw(31, 20, wide));
      const py2 = spawnSync(PYTHON, ['-c', 'import sys\nfrom PIL import Image\nimg = Image.frombytes("RGB", (31, 20), sys.stdin.buffer.read())\nsys.stdout.buffer.write(img.resize((15, 10), Image.BICUBIC).crop((2, 0, 12, 10)).tobytes())'], { input: wide });
      expect(maxLevelDiff(out2, new Uint8Array(py2.stdout))).toBeLessThan(1e-3);
    });

    // Upscale (a 24×24 crop to 32) and downscale (a 48×48 crop to 32) of a noise image: the
    // most kernel-sensitive input there is.
    const cases: Array<{ name: string; w: number; h: number; scale: number; size: number }> = [
      { name: 'upscale 24→32', w: 40, h: 30, scale: (24 * 24) / (40 * 30), size: 32 },
      { name: 'downscale 48→32', w: 64, h: 56, scale: (48 * 48) / (64 * 56), size: 32 },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const raw = noise(c.w, c.h, 5);
        const png = await fromRaw(c.w, c.h, raw);
        // First attempt accepted: square side = round(sqrt(scale·area)); top/left from draws 0.5.
        const side = Math.round(Math.sqrt(c.scale * c.w * c.h));
        const draws = new Array<number>(40).fill(0.5);
        draws.splice(0, 4, 0, 0.5, 0.5, 0.5);
        const top = Math.floor(0.5 * (c.h - side + 1));
        const left = Math.floor(0.5 * (c.w - side + 1));
        const plan = (interpolation: 'bilinear' | 'bicubic'): TransformPlan => ({
          kind: 'randomResizedCrop', size: c.size, scale: [c.scale, c.scale], ratio: [1, 1], draws, interpolation, mean: CLIP_MEAN, std: CLIP_STD,
        });
        const bilinear = pilCrop(raw, c.w, c.h, [left, top, side, side], c.size, 'bilinear');
        const bicubic = pilCrop(raw, c.w, c.h, [left, top, side, side], c.size, 'bicubic');
        const oursBil = (await applyTransformPlan(png, plan('bilinear'))).data;
        const oursCub = (await applyTransformPlan(png, plan('bicubic'))).data;
        const dBil = maxLevelDiff(oursBil, bilinear);
        const dCub = maxLevelDiff(oursCub, bicubic);
        const dCubicVsBil = maxLevelDiff(oursCub, bilinear);
        console.log(`${c.name}: vs PIL BILINEAR ${dBil.toFixed(3)} levels, vs PIL BICUBIC ${dCub.toFixed(3)}; our bicubic vs PIL BILINEAR ${dCubicVsBil.toFixed(1)}`);
        // PIL's fixed-point resampler reproduced: the same 8-bit pixels (up to float32 normalisation).
        expect(dBil).toBeLessThan(1e-3);
        expect(dCub).toBeLessThan(1e-3);
        // The kernels are told apart on this input.
        expect(dCubicVsBil).toBeGreaterThan(5);
      });
    }
  });
});
