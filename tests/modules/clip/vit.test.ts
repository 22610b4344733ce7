import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { VisionTransformer } from '../../../modules/clip/index.js';
import { expectClose, fixture, perturb, refVisionTransformer, values } from './helpers.js';

const opts = { imageSize: 16, patchSize: 4, width: 16, layers: 2, heads: 2, outputDim: 8 };

function std(t: tf.Tensor): number {
  const v = values(t);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
}

describe('VisionTransformer', () => {
  it("has OpenAI's names and shapes, own parameters first as PyTorch lists them", () => {
    const vit = new VisionTransformer(opts);
    const sd = vit.stateDict();
    expect(Object.keys(sd).slice(0, 5)).toEqual(['class_embedding', 'positional_embedding', 'proj', 'conv1.weight', 'ln_pre.weight']);
    expect(sd['conv1.weight']!.shape).toEqual([16, 3, 4, 4]);
    expect(sd['positional_embedding']!.shape).toEqual([17, 16]);
    expect(sd['proj']!.shape).toEqual([16, 8]);
    expect('conv1.bias' in sd).toBe(false);
    expect(Object.keys(sd).at(-1)).toBe('ln_post.bias');
  });

  it('initialises class/positional embeddings and proj as width^-0.5 · N(0, 1)', () => {
    seedEverything(0);
    const vit = new VisionTransformer({ ...opts, imageSize: 64, width: 64, outputDim: 64, layers: 0 });
    for (const p of [vit.positionalEmbedding, vit.proj]) expect(std(p.variable)).toBeCloseTo(0.125, 2);
    expect(std(vit.classEmbedding.variable)).toBeGreaterThan(0.08);
    expect(std(vit.classEmbedding.variable)).toBeLessThan(0.17);
  });

  it('matches a hand composition (patchify by reshape, class token, blocks, ln_post, proj)', () => {
    seedEverything(3);
    const vit = new VisionTransformer(opts);
    perturb(vit);
    const images = fixture([2, 16, 16, 3], 7);
    const got = vit.forward(images);
    const want = tf.tidy(() => refVisionTransformer(images, vit.stateDict(), '', 4, 2, 2));
    expect(got.shape).toEqual([2, 8]);
    expectClose(got, want, 3e-5);
  });

  it('rejects image sizes that are not a multiple of the patch, and wrong inputs', () => {
    expect(() => new VisionTransformer({ ...opts, imageSize: 18 })).toThrow(MisconfigurationError);
    const vit = new VisionTransformer(opts);
    expect(() => vit.forward(fixture([1, 3, 16, 16]))).toThrow(/NHWC images \[B, 16, 16, 3\]/);
    expect(() => vit.forward(fixture([1, 32, 32, 3]))).toThrow(/got \[1, 32, 32, 3\]/);
  });
});
