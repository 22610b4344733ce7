import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { seedEverything } from '../../../core/random.js';
import { tf } from '../../../core/tf.js';
import { TextTransformer } from '../../../modules/clip/index.js';
import { expectClose, perturb, refEncodeText, tokenRows, values } from './helpers.js';

const opts = { contextLength: 12, vocabSize: 49408, width: 16, heads: 2, layers: 2, outputDim: 8 };

function std(t: tf.Tensor): number {
  const v = values(t);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
}

describe('TextTransformer', () => {
  it("keeps OpenAI's text keys at its root", () => {
    const text = new TextTransformer({ ...opts, vocabSize: 100 });
    const sd = text.stateDict();
    expect(Object.keys(sd).slice(0, 2)).toEqual(['positional_embedding', 'text_projection']);
    expect(sd['token_embedding.weight']!.shape).toEqual([100, 16]);
    expect(sd['positional_embedding']!.shape).toEqual([12, 16]);
    expect(sd['text_projection']!.shape).toEqual([16, 8]);
    expect(sd['transformer.resblocks.1.mlp.c_proj.weight']!.shape).toEqual([16, 64]);
    expect(sd['ln_final.weight']!.shape).toEqual([16]);
  });

  it("initialises as OpenAI's initialize_parameters", () => {
    seedEverything(0);
    const text = new TextTransformer({ contextLength: 77, vocabSize: 2000, width: 64, heads: 2, layers: 2, outputDim: 64 });
    const sd = text.stateDict();
    const w = 64;
    const cases: Array<[string, number]> = [
      ['token_embedding.weight', 0.02],
      ['positional_embedding', 0.01],
      ['text_projection', w ** -0.5],
      ['transformer.resblocks.0.attn.in_proj_weight', w ** -0.5],
      ['transformer.resblocks.1.attn.out_proj.weight', w ** -0.5 * (2 * 2) ** -0.5],
      ['transformer.resblocks.0.mlp.c_fc.weight', (2 * w) ** -0.5],
      ['transformer.resblocks.1.mlp.c_proj.weight', w ** -0.5 * (2 * 2) ** -0.5],
    ];
    for (const [key, want] of cases) expect(std(sd[key]!) / want, key).toBeCloseTo(1, 1);
  });

  it('matches a hand composition: causal blocks, ln_final, the row at argmax(tokens), text_projection', () => {
    seedEverything(7);
    const text = new TextTransformer(opts);
    perturb(text);
    const rows = tokenRows([3, 9, 0], 12);
    const tokens = tf.tensor2d(rows, undefined, 'int32');
    const want = tf.tidy(() => refEncodeText(rows, text.stateDict(), 2, 2));
    for (const trimPadding of [false, true]) {
      const got = text.forward(tokens, { trimPadding });
      expect(got.shape).toEqual([3, 8]);
      expectClose(got, want, 3e-5);
    }
  });

  it('has the gradients of the hand composition (repeated ids sum into one embedding row)', () => {
    seedEverything(8);
    const text = new TextTransformer({ ...opts, vocabSize: 50, layers: 1 });
    perturb(text);
    // ids 7 and 9 appear several times; EOT is the largest id in each row.
    const rows = [[1, 7, 7, 9, 49, 0, 0, 0, 0, 0, 0, 0], [2, 9, 7, 3, 9, 48, 0, 0, 0, 0, 0, 0]];
    const tokens = tf.tensor2d(rows, undefined, 'int32');
    const sd = text.stateDict();
    const vars = Object.values(sd) as tf.Variable[];
    const target = tf.tensor2d([[1, -2, 3, 0, 1, 2, -1, 0.5], [0, 1, -1, 2, 0.5, -0.5, 1, 1]]);
    const loss = (f: tf.Tensor): tf.Scalar => tf.sum(tf.mul(f, target)) as tf.Scalar;
    const got = tf.variableGrads(() => loss(text.forward(tokens)), vars).grads;
    const want = tf.variableGrads(() => loss(refEncodeText(rows, sd, 1, 2)), vars).grads;
    for (const v of Object.values(sd) as unknown as tf.Variable[]) expectClose(got[v.name]!, want[v.name]!, 2e-5);
    const emb = values(got[(sd['token_embedding.weight'] as unknown as tf.Variable).name]!);
    expect(emb.slice(7 * 16, 8 * 16).some((g) => g !== 0)).toBe(true);
    expect(emb.slice(10 * 16, 11 * 16).every((g) => g === 0)).toBe(true);
  });

  it('gives the same features for a shorter, unpadded batch and for float ids', () => {
    const text = new TextTransformer(opts);
    const rows = tokenRows([2, 4], 12);
    const full = text.forward(tf.tensor2d(rows, undefined, 'int32'), { trimPadding: false });
    const short = text.forward(tf.tensor2d(rows.map((r) => r.slice(0, 7)), undefined, 'int32'), { trimPadding: false });
    const floats = text.forward(tf.tensor2d(rows, undefined, 'float32'));
    expectClose(short, full, 1e-5);
    expectClose(floats, full, 1e-5);
  });

  it('depends on the token at EOT and before it, never after', () => {
    const text = new TextTransformer(opts);
    const rows = tokenRows([4], 12);
    const base = text.forward(tf.tensor2d(rows, undefined, 'int32'), { trimPadding: false });
    const after = rows.map((r) => r.map((t, i) => (i === 8 ? 777 : t)));
    const before = rows.map((r) => r.map((t, i) => (i === 2 ? 777 : t)));
    expectClose(text.forward(tf.tensor2d(after, undefined, 'int32'), { trimPadding: false }), base, 1e-6);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(text.forward(tf.tensor2d(before, undefined, 'int32')), base))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('rejects token batches longer than the context and bad sizes', () => {
    const text = new TextTransformer(opts);
    expect(() => text.forward(tf.zeros([2, 13], 'int32'))).toThrow(/1 ≤ L ≤ 12/);
    expect(() => text.forward(tf.zeros([12], 'int32'))).toThrow(/\[B, L\]/);
    expect(() => new TextTransformer({ ...opts, contextLength: 0 })).toThrow(MisconfigurationError);
    expect(() => new TextTransformer({ ...opts, heads: 3 })).toThrow(MisconfigurationError);
  });
});
