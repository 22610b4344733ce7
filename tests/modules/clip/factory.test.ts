import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../../core/checkpoint/safetensors.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { StateDictError, type StateDict } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { create, listRegistered } from '../../../core/registry.js';
import { tf } from '../../../core/tf.js';
import { CLIP, createClip, getModelConfig, listModels, loadClipWeights, parseClipOverrides, VisionTransformer } from '../../../modules/clip/index.js';
import { expectClose, fixture, perturb, tokenRows } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lightclip-clip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const images = fixture([2, 32, 32, 3], 3);
const tokens = tf.tensor2d(tokenRows([3, 6], 16), undefined, 'int32');

function logits(model: CLIP): number[] {
  model.eval();
  return tf.tidy(() => Array.from(model.forward(images, tokens).logitsPerImage.dataSync()));
}

/** A copy of the model's state dict (fresh tensors), optionally edited. */
function copyOf(model: CLIP, edit: (sd: StateDict) => void = () => {}): StateDict {
  const sd: StateDict = {};
  for (const [k, t] of Object.entries(model.stateDict())) sd[k] = tf.clone(t);
  edit(sd);
  return sd;
}

describe('createClip', () => {
  it('lists the built-in models and rejects unknown names, listing the known ones', () => {
    expect(listModels()).toEqual(expect.arrayContaining(['RN50', 'ViT-B/32', 'ViT-L/14-336px', 'tiny-ViT', 'tiny-RN']));
    expect(() => createClip('ViT-Z/99')).toThrow(MisconfigurationError);
    expect(() => createClip('ViT-Z/99')).toThrow(/Available: .*ViT-B\/32/);
  });

  it('applies named overrides last (imageSize, quickGelu), leaving the given config untouched', () => {
    const cfg = getModelConfig('tiny-ViT');
    const model = createClip(cfg, { imageSize: 48, quickGelu: false });
    expect(cfg.vision.imageSize).toBe(32);
    expect(model.imageSize).toBe(48);
    expect(model.stateDict()['visual.positional_embedding']!.shape).toEqual([37, 64]);
    expect(model.config.quickGelu).toBe(false);
    expect((model.visual as VisionTransformer).transformer.resblocks.get(0).quickGelu).toBe(false);
    expect(model.transformer.resblocks.get(0).quickGelu).toBe(false);
    expect(createClip('tiny-RN', { imageSize: 64 }).stateDict()['visual.attnpool.positional_embedding']!.shape).toEqual([5, 256]);
  });

  it('rejects overrides the architecture cannot take', () => {
    expect(() => createClip('tiny-ViT', { imageSize: 36 })).toThrow(/multiple of the patch size 8/);
    expect(() => createClip('tiny-RN', { imageSize: 48 })).toThrow(/multiple of 32/);
    expect(() => createClip('tiny-ViT', { imageSize: -8 })).toThrow(MisconfigurationError);
    expect(() => parseClipOverrides({ image_size: 32 })).toThrow(/Unknown CLIP override `image_size`/);
    expect(() => parseClipOverrides({ quickGelu: 'yes' })).toThrow(/`quickGelu` must be true or false/);
  });

  it('registers every model under the registry kind "clip"', () => {
    expect(listRegistered('clip')).toEqual(expect.arrayContaining(listModels()));
    const model = create<CLIP>('clip', 'tiny-ViT', { imageSize: 16 });
    expect(model).toBeInstanceOf(CLIP);
    expect(model.imageSize).toBe(16);
    expect(() => create('clip', 'tiny-ViT', { patch: 4 })).toThrow(MisconfigurationError);
  });
});

describe('loadClipWeights', () => {
  it.each(['tiny-ViT', 'tiny-RN'])('%s: weights saved to safetensors load into a fresh model with identical outputs', async (name) => {
    seedEverything(1);
    const a = createClip(name);
    perturb(a);
    const file = join(dir, `${name}.safetensors`);
    await writeSafetensors(file, a.stateDict());
    seedEverything(2);
    const b = createClip(name);
    expect(logits(b)).not.toEqual(logits(a));
    const before = tf.memory().numTensors;
    const result = await loadClipWeights(b, file);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(tf.memory().numTensors).toBe(before);
    expect(logits(b)).toEqual(logits(a));
    expectClose(b.stateDict()['logit_scale']!, a.stateDict()['logit_scale']!, 0);
  });

  it("finds a lightclip checkpoint's `state_dict.` prefix and open_clip's `module.`, ignoring other entries", async () => {
    seedEverything(3);
    const a = createClip('tiny-RN');
    perturb(a);
    const tensors: Record<string, tf.Tensor> = { 'optimizer_states.0.exp_avg.3': tf.zeros([2]) };
    for (const [k, t] of Object.entries(a.stateDict())) {
      // num_batches_tracked left out, as in pre-1.0 PyTorch files: it loads as 0.
      if (!k.endsWith('num_batches_tracked')) tensors[`state_dict.module.${k}`] = t;
    }
    const file = join(dir, 'tiny-RN.ckpt');
    await writeSafetensors(file, tensors);
    const b = createClip('tiny-RN');
    await loadClipWeights(b, file);
    expect(logits(b)).toEqual(logits(a));
    // An explicit prefix works too, and OpenAI's non-weight entries are dropped.
    const c = createClip('tiny-RN');
    const sd = copyOf(a, (s) => {
      s['input_resolution'] = tf.scalar(32, 'int32');
      s['context_length'] = tf.scalar(16, 'int32');
    });
    const prefixed = Object.fromEntries(Object.entries(sd).map(([k, t]) => [`model.${k}`, t]));
    await loadClipWeights(c, prefixed, { prefix: 'model.' });
    expect(logits(c)).toEqual(logits(a));
  });

  it('names missing, unexpected and mis-shaped keys (and the file)', async () => {
    const a = createClip('tiny-ViT');
    const missing = join(dir, 'missing.safetensors');
    await writeSafetensors(missing, copyOf(a, (sd) => delete sd['visual.ln_post.bias']));
    await expect(loadClipWeights(createClip('tiny-ViT'), missing)).rejects.toThrow(StateDictError);
    await expect(loadClipWeights(createClip('tiny-ViT'), missing)).rejects.toThrow(/missing\.safetensors.*Missing key\(s\): "visual\.ln_post\.bias"/);

    const extra = copyOf(a, (sd) => (sd['visual.attnpool.k_proj.weight'] = tf.zeros([2, 2])));
    await expect(loadClipWeights(createClip('tiny-ViT'), extra)).rejects.toThrow(/Unexpected key\(s\): "visual\.attnpool\.k_proj\.weight"/);
    const lenient = await loadClipWeights(createClip('tiny-ViT'), extra, { strict: false });
    expect(lenient.unexpectedKeys).toEqual(['visual.attnpool.k_proj.weight']);

    const misshaped = copyOf(a, (sd) => (sd['visual.positional_embedding'] = tf.zeros([37, 64])));
    const err = await loadClipWeights(createClip('tiny-ViT'), misshaped).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateDictError);
    expect((err as StateDictError).shapeMismatches).toEqual(['visual.positional_embedding: checkpoint [37, 64] vs model [17, 64]']);
    expect((err as Error).message).toMatch(/another image size/);
  });

  it('reports a file that does not exist', async () => {
    await expect(loadClipWeights(createClip('tiny-ViT'), join(dir, 'nope.safetensors'))).rejects.toThrow(MisconfigurationError);
  });
});
