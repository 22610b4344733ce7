import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { F, GELU, QuickGELU } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { ResidualAttentionBlock, Transformer } from '../../../modules/clip/index.js';
import { expectClose, fixture, perturb, refBlock, refCausalMask, refTransformer } from './helpers.js';

describe('ResidualAttentionBlock', () => {
  it("has OpenAI's keys and shapes, in OpenAI's order", () => {
    const block = new ResidualAttentionBlock(8, 2);
    const shapes = Object.entries(block.stateDict()).map(([k, t]) => [k, t.shape]);
    expect(shapes).toEqual([
      ['attn.in_proj_weight', [24, 8]], ['attn.in_proj_bias', [24]], ['attn.out_proj.weight', [8, 8]], ['attn.out_proj.bias', [8]],
      ['ln_1.weight', [8]], ['ln_1.bias', [8]],
      ['mlp.c_fc.weight', [32, 8]], ['mlp.c_fc.bias', [32]], ['mlp.c_proj.weight', [8, 32]], ['mlp.c_proj.bias', [8]],
      ['ln_2.weight', [8]], ['ln_2.bias', [8]],
    ]);
    expect(block.mlp.get(1)).toBeInstanceOf(QuickGELU);
    expect(new ResidualAttentionBlock(8, 2, { quickGelu: false }).mlp.get(1)).toBeInstanceOf(GELU);
  });

  it.each([
    ['no mask, QuickGELU', false, true],
    ['causal mask, QuickGELU', true, true],
    ['causal mask, exact GELU', true, false],
  ])('matches a hand composition (%s)', (_, masked, quickGelu) => {
    seedEverything(1);
    const block = new ResidualAttentionBlock(12, 3, { quickGelu });
    perturb(block);
    const x = fixture([2, 5, 12], 3);
    const mask = masked ? F.causalMask(5) : null;
    const got = block.forward(x, mask);
    const want = tf.tidy(() => refBlock(x, block.stateDict(), '', 3, masked ? refCausalMask(5) : null, quickGelu));
    expect(got.shape).toEqual([2, 5, 12]);
    expectClose(got, want, 2e-5);
  });

  it('hides masked keys: a causal block gives the first token the same output whatever follows it', () => {
    const block = new ResidualAttentionBlock(8, 2);
    const a = fixture([1, 4, 8], 1);
    const b = tf.concat([tf.slice(a, [0, 0, 0], [1, 1, 8]), fixture([1, 3, 8], 9)], 1);
    const ya = block.forward(a, F.causalMask(4));
    const yb = block.forward(b, F.causalMask(4));
    expectClose(tf.slice(ya, [0, 0, 0], [1, 1, 8]), tf.slice(yb, [0, 0, 0], [1, 1, 8]), 1e-6);
    // ...and without the mask it does depend on them.
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(block.forward(a), [0, 0, 0], [1, 1, 8]), tf.slice(block.forward(b), [0, 0, 0], [1, 1, 8])))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('rejects widths the heads do not divide, and bad inputs', () => {
    expect(() => new ResidualAttentionBlock(10, 3)).toThrow(MisconfigurationError);
    expect(() => new ResidualAttentionBlock(8, 2, { mlpRatio: 0 })).toThrow(MisconfigurationError);
    expect(() => new ResidualAttentionBlock(8, 2).forward(fixture([2, 4, 6]))).toThrow(/\[B, L, 8\]/);
  });
});

describe('Transformer', () => {
  it('names blocks resblocks.N and composes them in order', () => {
    seedEverything(2);
    const t = new Transformer(8, 3, 2);
    perturb(t);
    expect(Object.keys(t.stateDict()).filter((k) => k.endsWith('ln_1.weight'))).toEqual([
      'resblocks.0.ln_1.weight', 'resblocks.1.ln_1.weight', 'resblocks.2.ln_1.weight',
    ]);
    const x = fixture([2, 6, 8], 4);
    const got = t.forward(x, F.causalMask(6));
    const want = tf.tidy(() => refTransformer(x, t.stateDict(), '', 3, 2, refCausalMask(6)));
    expectClose(got, want, 3e-5);
  });

  it('frees its intermediates and never its input', () => {
    const t = new Transformer(8, 3, 2);
    const x = fixture([1, 4, 8]);
    const before = tf.memory().numTensors;
    const y = t.forward(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    y.dispose();
    expect(x.isDisposed).toBe(false);
    const id = new Transformer(8, 0, 2).forward(x);
    expect(id).not.toBe(x);
    expectClose(id, x, 0);
  });
});
