import { describe, expect, it } from 'vitest';
import { tf, type Tensor } from '../../../core/tf.js';
import { seedEverything } from '../../../core/random.js';
import { resolveModelConfig } from '../../../modules/clip/config.js';
import { LlipModel } from '../../../modules/llip/model.js';
import { LlipCrossAttention, llipSimilarity, llipSimilarityNaive } from '../../../modules/llip/similarity.js';

const unitRows = (x: Tensor): Tensor => tf.div(x, tf.norm(x, 2, -1, true));

describe('Llip similarity', () => {
  it.each([
    [1, 1],
    [2, 4],
    [4, 4],
  ])('the factorised N×N similarity equals the one from materialised z (heads %i, temperature ½·%i), values and gradients', (heads, t) => {
    seedEverything(3);
    const attn = new LlipCrossAttention({ embedDim: 8, tokenDim: 6, heads, temperature: t / 2 });
    // Non-zero biases so every term of the factorisation is exercised.
    for (const [, p] of attn.namedParameters()) if (p.ndim === 1) p.variable.assign(tf.randomNormal(p.shape, 0, 0.5, 'float32', 7));
    const tokens = tf.randomNormal([5, 3, 6], 0, 1, 'float32', 1);
    const texts = unitRows(tf.randomNormal([4, 8], 0, 1, 'float32', 2));
    const fast = llipSimilarity(attn, tokens, texts);
    const ref = llipSimilarityNaive(attn, tokens, texts);
    expect(fast.shape).toEqual([5, 4]);
    const f = fast.dataSync();
    const r = ref.dataSync();
    for (let i = 0; i < f.length; i++) expect(f[i]).toBeCloseTo(r[i]!, 5);
    // Cosines: in [-1, 1] and not all equal.
    expect(Math.max(...r.map(Math.abs))).toBeLessThanOrEqual(1 + 1e-6);
    expect(new Set(Array.from(r).map((x) => x.toFixed(3))).size).toBeGreaterThan(4);
    // Gradients of a weighted sum with respect to the inputs and every attention parameter.
    const weights = tf.randomNormal([5, 4], 0, 1, 'float32', 9);
    const params = attn.parameters().map((p) => p.variable);
    const grad = (fn: typeof llipSimilarity) =>
      tf.grads((tok: Tensor, txt: Tensor, ...ps: Tensor[]) => {
        void ps;
        return tf.sum(tf.mul(fn(attn, tok, txt), weights));
      })([tokens, texts, ...params]);
    const vg = (fn: typeof llipSimilarity) => tf.variableGrads(() => tf.sum(tf.mul(fn(attn, tokens, texts), weights)) as tf.Scalar, params);
    const [gf, gr] = [grad(llipSimilarity), grad(llipSimilarityNaive)];
    for (let k = 0; k < 2; k++) {
      const a = gf[k]!.dataSync();
      const b = gr[k]!.dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i], `input ${k} [${i}]`).toBeCloseTo(b[i]!, 4);
    }
    const [pf, pr] = [vg(llipSimilarity), vg(llipSimilarityNaive)];
    for (const v of params) {
      const a = pf.grads[v.name]!.dataSync();
      const b = pr.grads[v.name]!.dataSync();
      let max = 0;
      for (let i = 0; i < a.length; i++) {
        expect(a[i], `${v.name} [${i}]`).toBeCloseTo(b[i]!, 4);
        max = Math.max(max, Math.abs(b[i]!));
      }
      expect(max, v.name).toBeGreaterThan(0);
    }
  });

  it('rejects heads that do not divide the width and a non-positive temperature, naming them', () => {
    expect(() => new LlipCrossAttention({ embedDim: 8, tokenDim: 6, heads: 3 })).toThrow(/heads/);
    expect(() => new LlipCrossAttention({ embedDim: 8, tokenDim: 6, heads: 2, temperature: 0 })).toThrow(/--llip_temperature/);
  });
});

describe('LlipModel', () => {
  it('ViT-B/16 with K = 32: mixture-token shape and parameter count (CLIP B/16 − visual.proj + tokens + cross-attention + bias)', () => {
    const cfg = resolveModelConfig('ViT-B/16');
    // OpenAI's ViT-B/16 CLIP has 149,620,737 parameters (open_clip's table: 149.62M; logit_scale included).
    const clipCount = 149_620_737;
    const llip = new LlipModel(cfg, { numMixtureTokens: 32 });
    const names = Object.fromEntries(llip.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(names['visual.mixture_tokens']).toEqual([32, 768]);
    expect(names['visual.proj']).toBeUndefined();
    expect(names['mixture_attn.q_proj.weight']).toEqual([512, 512]);
    expect(names['mixture_attn.k_proj.weight']).toEqual([512, 768]);
    expect(names['mixture_attn.v_proj.weight']).toEqual([512, 768]);
    expect(names['mixture_attn.out_proj.weight']).toEqual([512, 512]);
    expect(llip.mixtureAttn.heads).toBe(8);
    const count = llip.parameters().reduce((s, p) => s + p.size, 0);
    const attn = 2 * (512 * 512 + 512) + 2 * (768 * 512 + 512);
    expect(count).toBe(clipCount - 768 * 512 + 32 * 768 + attn + 1);
    llip.dispose();
  });

  it('tiny-ViT with K = 4: encodeImage gives [B, K, width], the mixture tokens differ from one another, similarity is [Ni, Nt]', () => {
    seedEverything(1);
    const m = new LlipModel('tiny-ViT', { numMixtureTokens: 4 });
    const h = m.encodeImage(tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 4));
    expect(h.shape).toEqual([3, 4, 64]);
    const t = m.encodeTextNormalized(tf.tensor2d([[49406, 320, 49407, 0], [49406, 321, 322, 49407]], [2, 4], 'int32'));
    const s = m.similarity(h, t);
    expect(s.shape).toEqual([3, 2]);
    const hv = h.arraySync() as number[][][];
    expect(Math.abs(hv[0]![0]![0]! - hv[0]![1]![0]!)).toBeGreaterThan(1e-4);
    expect(() => new LlipModel('RN50', { numMixtureTokens: 4 })).toThrow(/ViT image tower/);
    expect(() => new LlipModel('tiny-ViT', { numMixtureTokens: 0 })).toThrow(/--num_mixture_tokens/);
  });
});
