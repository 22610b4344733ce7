import { describe, expect, it } from 'vitest';
import { backward } from '../../../core/autograd.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { F } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import {
  CLIP, clipStateDictShapes, createClip, getModelConfig, isResNetConfig, listModels, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX,
  ModifiedResNet, type ClipConfig,
} from '../../../modules/clip/index.js';
import { expectClose, fixture, perturb, tokenRows, values } from './helpers.js';

const isBuffer = (k: string): boolean => /\.(running_mean|running_var|num_batches_tracked)$/.test(k);

function shapesOf(model: CLIP): Record<string, number[]> {
  return Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.shape]));
}

/** Same depths, grid and context as `cfg`, but every width tiny, so that even RN50x64 builds in milliseconds. */
function shrink(cfg: ClipConfig): ClipConfig {
  const c = structuredClone(cfg);
  c.embedDim = 4;
  c.vision.width = isResNetConfig(c) ? 2 : 8;
  c.vision.heads = 2;
  c.text = { ...c.text, width: 8, heads: 2, vocabSize: 10 };
  return c;
}

function paramCount(shapes: Record<string, number[]>): number {
  return Object.entries(shapes).reduce((n, [k, s]) => n + (isBuffer(k) ? 0 : s.reduce((a, b) => a * b, 1)), 0);
}

function std(t: tf.Tensor): number {
  const v = values(t);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
}

describe('CLIP state dict', () => {
  it.each(['tiny-ViT', 'tiny-RN'])("%s: every key and shape is OpenAI's, parameters in PyTorch's order", (name) => {
    const model = createClip(name);
    const want = clipStateDictShapes(model.config);
    expect(shapesOf(model)).toEqual(want);
    expect(model.namedParameters().map(([k]) => k)).toEqual(Object.keys(want).filter((k) => !isBuffer(k)));
    model.dispose();
  });

  it.each(listModels())('%s: the module tree at tiny widths has exactly the keys and shapes clipStateDictShapes gives', (name) => {
    const cfg = shrink(getModelConfig(name));
    const model = new CLIP(cfg);
    const want = clipStateDictShapes(cfg);
    expect(shapesOf(model)).toEqual(want);
    expect(model.namedParameters().map(([k]) => k)).toEqual(Object.keys(want).filter((k) => !isBuffer(k)));
    model.dispose();
  });

  // Totals printed by OpenAI's CLIP notebook (`sum(p.numel() for p in model.parameters())`).
  it.each([
    ['ViT-B/32', 151_277_313],
    ['ViT-B/16', 149_620_737],
    ['ViT-L/14', 427_616_513],
    ['RN50', 102_007_137],
  ])('%s has the published parameter count', (name, total) => {
    expect(paramCount(clipStateDictShapes(getModelConfig(name)))).toBe(total);
  });
});

describe('CLIP initialisation', () => {
  it('starts logit_scale at ln(1/0.07)', () => {
    const model = createClip('tiny-ViT');
    expect(model.logitScale.shape).toEqual([]);
    expect(values(model.logitScale.variable)[0]).toBeCloseTo(LOGIT_SCALE_INIT, 6);
    expect(LOGIT_SCALE_INIT).toBeCloseTo(2.659260036932778, 12);
    model.dispose();
  });

  it('zeroes every bottleneck bn3 weight and draws attnpool projections with std C^-0.5 (ResNet)', () => {
    seedEverything(0);
    const model = createClip('tiny-RN');
    const visual = model.visual as ModifiedResNet;
    const sd = model.stateDict();
    const bn3 = Object.keys(sd).filter((k) => /^visual\.layer\d\.\d+\.bn3\.weight$/.test(k));
    expect(bn3.length).toBe(4);
    for (const k of bn3) expect(values(sd[k]!).every((v) => v === 0)).toBe(true);
    // The stem's bn3 is not a bottleneck's: it keeps ones.
    expect(values(sd['visual.bn3.weight']!).every((v) => v === 1)).toBe(true);
    const c = visual.attnpool.cProj.inFeatures;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'c_proj']) expect(std(sd[`visual.attnpool.${p}.weight`]!) / c ** -0.5, p).toBeCloseTo(1, 1);
    expect(std(sd['token_embedding.weight']!) / 0.02).toBeCloseTo(1, 1);
    model.dispose();
  });
});

describe.each(['tiny-ViT', 'tiny-RN'])('CLIP forward (%s)', (name) => {
  seedEverything(11);
  const model = createClip(name);
  perturb(model);
  const images = fixture([3, 32, 32, 3], 4);
  const rows = tokenRows([2, 5, 9], 16);
  const tokens = tf.tensor2d(rows, undefined, 'int32');

  it('returns normalised features, exp(logit_scale) and logits [B, T] with logitsPerText = transpose', () => {
    model.eval();
    const out = model.forward(images, tokens);
    expect(out.logitsPerImage.shape).toEqual([3, 3]);
    expect(out.logitScale.shape).toEqual([]);
    expect(values(out.logitScale)[0]).toBeCloseTo(Math.exp(values(model.logitScale.variable)[0]!), 4);
    expectClose(out.logitsPerText, tf.transpose(out.logitsPerImage), 0);
    expectClose(tf.norm(out.imageFeatures, 2, 1), [1, 1, 1], 1e-5);
    expectClose(tf.norm(out.textFeatures, 2, 1), [1, 1, 1], 1e-5);
    // Features as OpenAI's encode_* (unnormalised), then normalised and scaled by hand.
    const img = F.normalize(model.encodeImage(images));
    const txt = F.normalize(model.encodeText(tokens, { trimPadding: false }));
    expectClose(out.imageFeatures, img, 1e-5);
    expectClose(out.textFeatures, txt, 1e-5);
    expectClose(out.logitsPerImage, tf.mul(tf.matMul(img, txt, false, true), out.logitScale), 1e-4);
    expectClose(model.encodeImage(images, { normalize: true }), img, 1e-6);
    // Fewer captions than images: [B, T].
    const two = model.forward(images, tf.slice(tokens, [0, 0], [2, 16]));
    expect(two.logitsPerImage.shape).toEqual([3, 2]);
    expect(two.logitsPerText.shape).toEqual([2, 3]);
  });

  it('clampLogitScale clamps to [0, ln 100]', () => {
    const v = model.logitScale.variable;
    v.assign(tf.scalar(7));
    model.clampLogitScale();
    expect(values(v)[0]).toBeCloseTo(LOGIT_SCALE_MAX, 6);
    v.assign(tf.scalar(-0.5));
    model.clampLogitScale();
    expect(values(v)[0]).toBe(0);
    v.assign(tf.scalar(2));
    model.clampLogitScale();
    expect(values(v)[0]).toBeCloseTo(2, 6);
    v.assign(tf.scalar(LOGIT_SCALE_INIT));
  });

  it('frees every intermediate tensor', () => {
    for (const mode of ['eval', 'train'] as const) {
      model[mode]();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        model.forward(images, tokens);
      });
      expect(tf.memory().numTensors).toBe(before);
      const out = model.forward(images, tokens);
      expect(tf.memory().numTensors).toBe(before + 5);
      Object.values(out).forEach((t) => t.dispose());
      const feats = [model.encodeImage(images), model.encodeText(tokens, { normalize: true })];
      expect(tf.memory().numTensors).toBe(before + 2);
      feats.forEach((t) => t.dispose());
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('sends a non-zero gradient to every parameter of a contrastive loss', () => {
    model.train();
    const params = model.parameters();
    params.forEach((p) => p.zeroGrad());
    const labels = tf.tensor1d([0, 1, 2], 'int32');
    const before = tf.memory().numTensors;
    const loss = backward(params, () => {
      const out = model.forward(images, tokens);
      return tf.div(tf.add(F.crossEntropy(out.logitsPerImage, labels), F.crossEntropy(out.logitsPerText, labels)), 2);
    });
    expect(Number.isFinite(values(loss)[0])).toBe(true);
    loss.dispose();
    const dead = model.namedParameters().filter(([, p]) => !p.grad || tf.tidy(() => tf.max(tf.abs(p.grad!)).dataSync()[0]!) === 0).map(([k]) => k);
    expect(dead).toEqual([]);
    // Only the gradients themselves were added.
    expect(tf.memory().numTensors).toBe(before + params.length);
    params.forEach((p) => p.zeroGrad());
  });

  it('rejects images of the wrong size', () => {
    expect(() => model.encodeImage(fixture([1, 64, 64, 3]))).toThrow(/\[B, 32, 32, 3\]/);
  });
});

describe('CLIP construction', () => {
  it('copies its config and validates sizes', () => {
    const cfg = getModelConfig('tiny-ViT');
    const model = new CLIP(cfg);
    cfg.embedDim = 999;
    expect(model.config.embedDim).toBe(32);
    expect(model.imageSize).toBe(32);
    expect(model.contextLength).toBe(16);
    model.dispose();
    expect(() => new CLIP({ ...getModelConfig('tiny-ViT'), vision: { ...getModelConfig('tiny-ViT').vision, imageSize: 36 } })).toThrow(MisconfigurationError);
  });
});
