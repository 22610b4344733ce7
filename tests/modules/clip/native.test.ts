/**
 * The CLIP towers take fused kernels (LayerNorm, GELU, softmax) when lightclip's native backend
 * is active: same values and gradients as on tfjs `cpu`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../../core/autograd.js';
import { registerNativeBackend } from '../../../core/native/backend.js';
import { nativeActive } from '../../../core/native/fused.js';
import { F } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { createClip, type CLIP } from '../../../modules/clip/index.js';
import { fixture, perturb, tokenRows } from './helpers.js';

const available = registerNativeBackend() === true;
afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Logits and every parameter's gradient of a contrastive loss, as flat arrays. */
function run(model: CLIP): number[][] {
  const images = fixture([2, 32, 32, 3], 3);
  const tokens = tf.tensor2d(tokenRows([3, 7], 16), undefined, 'int32');
  const labels = tf.tensor1d([0, 1], 'int32');
  const params = model.parameters();
  params.forEach((p) => p.zeroGrad());
  const logits = tf.tidy(() => Array.from(model.forward(images, tokens).logitsPerImage.dataSync()));
  backward(params, () => {
    const out = model.forward(images, tokens);
    return tf.add(F.crossEntropy(out.logitsPerImage, labels), F.crossEntropy(out.logitsPerText, labels));
  }).dispose();
  const grads = params.map((p) => Array.from(p.grad!.dataSync()));
  params.forEach((p) => p.zeroGrad());
  return [logits, ...grads];
}

describe.skipIf(!available)('CLIP on the lightclip-cpu backend', () => {
  it.each(['tiny-ViT', 'tiny-RN'])('%s: same logits and gradients as on tfjs cpu', async (name) => {
    await tf.setBackend('cpu');
    seedEverything(5);
    const model = createClip(name);
    perturb(model);
    model.eval();
    const ref = run(model);
    await tf.setBackend('lightclip-cpu');
    expect(nativeActive()).toBe(true);
    const got = run(model);
    await tf.setBackend('cpu');
    expect(got.length).toBe(ref.length);
    got.forEach((g, i) => {
      const r = ref[i]!;
      const scale = r.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
      const worst = g.reduce((m, v, j) => Math.max(m, Math.abs(v - r[j]!)), 0);
      expect(worst / scale, i === 0 ? 'logits' : model.namedParameters()[i - 1]![0]).toBeLessThan(1e-4);
    });
  });
});
