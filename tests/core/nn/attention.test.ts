import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import { F, MultiheadAttention, init } from '../../../core/nn/index.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { expectClose, fixture } from './helpers.js';

const E = 4;
const H = 2;
const D = E / H;

function makeAttn(): MultiheadAttention {
  const attn = new MultiheadAttention(E, H);
  // Non-zero biases, so a bias bug cannot hide behind PyTorch's zero initialisation.
  init.assignInit(attn.inProjBias!, (s) => fixture(s, 7));
  init.assignInit(attn.outProj.bias!, (s) => fixture(s, 8));
  return attn;
}

/**
 * MultiheadAttention composed by hand from the same weights: per-head slices of q, k, v,
 * softmax written as exp/sum, heads concatenated, then the output projection. `mask` is an
 * additive [B, L, S] tensor (already merged), or null.
 */
function manual(attn: MultiheadAttention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): { out: Tensor; weights: Tensor } {
  const w = attn.inProjWeight.variable;
  const b = attn.inProjBias!.variable;
  const proj = (x: Tensor, i: number): Tensor => tf.add(tf.matMul(tf.reshape(x, [-1, E]), tf.slice(w, [i * E, 0], [E, E]), false, true), tf.slice(b, [i * E], [E]));
  const [B, L] = q.shape as number[];
  const S = k.shape[1]!;
  const qp = tf.reshape(proj(q, 0), [B!, L!, E]);
  const kp = tf.reshape(proj(k, 1), [B!, S, E]);
  const vp = tf.reshape(proj(v, 2), [B!, S, E]);
  const heads: Tensor[] = [];
  const probs: Tensor[] = [];
  for (let h = 0; h < H; h++) {
    const sl = (t: Tensor, len: number): Tensor => tf.slice(t, [0, 0, h * D], [B!, len, D]);
    let s = tf.div(tf.matMul(sl(qp, L!), sl(kp, S), false, true), Math.sqrt(D));
    if (mask) s = tf.add(s, mask);
    const e = tf.exp(tf.sub(s, tf.max(s, -1, true)));
    const p = tf.div(e, tf.sum(e, -1, true));
    probs.push(p);
    heads.push(tf.matMul(p, sl(vp, S)));
  }
  const cat = tf.reshape(tf.concat(heads, -1), [-1, E]);
  const out = tf.add(tf.matMul(cat, attn.outProj.weight.variable, false, true), attn.outProj.bias!.variable);
  return { out: tf.reshape(out, [B!, L!, E]), weights: tf.div(tf.addN(probs), H) };
}

describe('MultiheadAttention', () => {
  it('uses PyTorch parameter names and shapes', () => {
    const attn = new MultiheadAttention(E, H);
    const sd = attn.stateDict();
    expect(Object.keys(sd)).toEqual(['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']);
    expect(sd['in_proj_weight']!.shape).toEqual([3 * E, E]);
    expect(sd['in_proj_bias']!.shape).toEqual([3 * E]);
    expect(sd['out_proj.weight']!.shape).toEqual([E, E]);
    expectClose(sd['out_proj.bias']!, [0, 0, 0, 0], 0);
    expect(() => new MultiheadAttention(6, 4)).toThrow(MisconfigurationError);
  });

  it('self-attention with a causal mask and a key padding mask matches the manual composition', () => {
    const attn = makeAttn();
    const x = fixture([2, 3, E], 2);
    const causal = F.causalMask(3);
    const pad = tf.tensor2d([[false, false, false], [false, false, true]], [2, 3], 'bool');
    // Merged additive mask [B, L, S]: causal everywhere, plus the padded last key of sample 2.
    const merged = tf.add(causal, tf.reshape(tf.where(pad, -Infinity, 0), [2, 1, 3]));
    const ref = manual(attn, x, x, x, merged);
    const [out, weights] = attn.forward(x, x, x, { attnMask: causal, keyPaddingMask: pad, needWeights: true });
    expect(out.shape).toEqual([2, 3, E]);
    expectClose(out, ref.out, 1e-5);
    expect(weights!.shape).toEqual([2, 3, 3]);
    expectClose(weights!, ref.weights, 1e-6);
    // Masked pairs get exactly zero weight.
    const w = weights!.arraySync() as number[][][];
    expect(w[0]![0]![1]).toBe(0);
    expect(w[1]![2]![2]).toBe(0);
    // Without masks the result differs (the masks were really applied).
    const [plain, none] = attn.forward(x);
    expect(none).toBeNull();
    expect(Math.abs(plain.sub(out).abs().max().dataSync()[0]!)).toBeGreaterThan(1e-3);
    expectClose(plain, manual(attn, x, x, x, null).out, 1e-5);
  });

  it('a boolean attnMask (true = masked) equals the additive one; [B·H, L, S] masks work', () => {
    const attn = makeAttn();
    const x = fixture([2, 3, E], 4);
    const boolCausal = tf.greater(tf.range(0, 3).reshape([1, 3]), tf.range(0, 3).reshape([3, 1]));
    const [a] = attn.forward(x, x, x, { attnMask: F.causalMask(3) });
    const [b] = attn.forward(x, x, x, { attnMask: boolCausal });
    expectClose(a, b, 0);
    const perHead = tf.tile(tf.expandDims(F.causalMask(3), 0), [2 * H, 1, 1]);
    const [c] = attn.forward(x, x, x, { attnMask: perHead });
    expectClose(c, a, 1e-6);
    expect(() => attn.forward(x, x, x, { attnMask: tf.zeros([2, 2]) })).toThrow(/attnMask/);
  });

  it('cross-attention (L ≠ S, separate key and value) matches, with per-head weights on request', () => {
    const attn = makeAttn();
    const q = fixture([2, 2, E], 5);
    const k = fixture([2, 4, E], 6);
    const v = fixture([2, 4, E], 9);
    const ref = manual(attn, q, k, v, null);
    const [out, w] = attn.forward(q, k, v, { needWeights: true, averageAttnWeights: false });
    expectClose(out, ref.out, 1e-5);
    expect(w!.shape).toEqual([2, H, 2, 4]);
    expectClose(tf.mean(w!, 1), ref.weights, 1e-6);
    // key === value takes the fused k/v projection path.
    const [kv] = attn.forward(q, k, k);
    expectClose(kv, manual(attn, q, k, k, null).out, 1e-5);
  });

  it('accepts unbatched [L, E] input', () => {
    const attn = makeAttn();
    const x = fixture([3, E], 3);
    const [single] = attn.forward(x);
    const [batched] = attn.forward(tf.expandDims(x, 0));
    expect(single.shape).toEqual([3, E]);
    expectClose(single, batched, 1e-6);
  });
});
