import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import { checkDropout, checkInt } from './checks.js';
import * as F from './functional.js';
import * as init from './init.js';
import { Linear } from './linear.js';
import { Module, type Parameter } from './module.js';

/** Options of {@link MultiheadAttention}. */
export interface MultiheadAttentionOptions {
  /** Dropout on the attention weights in training mode (default 0). */
  dropout?: number;
  /** Learn `in_proj_bias` and `out_proj.bias` (default true). */
  bias?: boolean;
}

/** Per-call options of {@link MultiheadAttention.forward}. */
export interface MultiheadAttentionForwardOptions {
  /**
   * `[L, S]` or `[B·numHeads, L, S]`: additive float (`-Infinity` hides a pair) or boolean
   * where **true = masked** (PyTorch's `attn_mask`). `F.causalMask(L)` gives the causal one.
   */
  attnMask?: Tensor | null;
  /** `[B, S]`: boolean, true = padding key to ignore, or additive float (`key_padding_mask`). */
  keyPaddingMask?: Tensor | null;
  /** Also return the attention weights (default false, unlike PyTorch: they cost a reduction). */
  needWeights?: boolean;
  /** Average the weights over heads to `[B, L, S]` (default true), else `[B, H, L, S]`. */
  averageAttnWeights?: boolean;
}

/**
 * Multi-head attention (PyTorch's `nn.MultiheadAttention`) with PyTorch's state-dict names
 * and layout: `in_proj_weight [3E, E]` (q, k, v stacked), `in_proj_bias [3E]`,
 * `out_proj.weight [E, E]`, `out_proj.bias [E]`, initialised as PyTorch (xavier-uniform
 * in_proj, zero biases).
 *
 * Inputs are batch-first, `[B, L, E]` (PyTorch's `batch_first=True`; the weights are the
 * same either way), or unbatched `[L, E]`. `forward` returns `[output, weights]`, with
 * `weights` null unless `needWeights` is set.
 */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Parameter;
  readonly inProjBias: Parameter | null;
  readonly outProj: Linear;
  readonly headDim: number;
  readonly dropout: number;

  /** @throws MisconfigurationError when `embedDim` is not divisible by `numHeads` or `dropout` is outside [0, 1). */
  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    options: MultiheadAttentionOptions = {},
  ) {
    super();
    checkInt('embedDim', embedDim);
    checkInt('numHeads', numHeads);
    if (embedDim % numHeads !== 0) {
      throw new MisconfigurationError(`\`embedDim\` (${embedDim}) must be divisible by \`numHeads\`, got ${showValue(numHeads)}`);
    }
    this.dropout = options.dropout ?? 0;
    checkDropout('dropout', this.dropout);
    this.headDim = embedDim / numHeads;
    const bias = options.bias ?? true;
    this.inProjWeight = this.registerParameter('in_proj_weight', init.xavierUniform([3 * embedDim, embedDim]));
    this.inProjBias = bias ? this.registerParameter('in_proj_bias', init.zeros([3 * embedDim])) : null;
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias }));
    if (this.outProj.bias) init.assignInit(this.outProj.bias, init.zeros);
  }

  /**
   * Attends from `query` `[B, L, E]` to `key` `[B, S, E]` / `value` `[B, S, E]` (both
   * default to the query: self-attention, computed with one fused projection).
   * Returns `[output [B, L, E], weights or null]`; the caller owns both.
   */
  forward(query: Tensor, key: Tensor = query, value: Tensor = key, options: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const batched = query.rank === 3;
    const e = this.embedDim;
    const want = batched ? 3 : 2;
    for (const [name, t] of [['query', query], ['key', key], ['value', value]] as const) {
      if (t.rank !== want || t.shape[want - 1] !== e || (batched && t.shape[0] !== query.shape[0])) {
        throw new Error(`MultiheadAttention: \`${name}\` must be [B, len, ${e}] (or [len, ${e}] unbatched, like the query), got [${t.shape.join(', ')}]`);
      }
    }
    if (key.shape[want - 2] !== value.shape[want - 2]) {
      throw new Error(`MultiheadAttention: key [${key.shape.join(', ')}] and value [${value.shape.join(', ')}] must have the same length`);
    }
    const needWeights = options.needWeights ?? false;
    const out = tf.tidy(() => {
      const q3 = batched ? query : tf.expandDims(query, 0);
      const k3 = batched ? key : tf.expandDims(key, 0);
      const v3 = batched ? value : tf.expandDims(value, 0);
      const [b, l] = q3.shape as [number, number, number];
      const s = k3.shape[1]!;
      const [q, k, v] = this.project(q3, k3, v3, query === key && key === value, key === value);
      const h = this.numHeads;
      const d = this.headDim;
      const heads = (t: Tensor, len: number): Tensor => tf.transpose(tf.reshape(t, [b, len, h, d]), [0, 2, 1, 3]);
      // Scale q before the product, as PyTorch does: L·D multiplies instead of L·S.
      let scores = tf.matMul(heads(tf.mul(q, 1 / Math.sqrt(d)), l), heads(k, s), false, true);
      const mask = this.additiveMask(options, b, l, s);
      if (mask) scores = tf.add(scores, mask);
      const probs = F.dropout(tf.softmax(scores), this.dropout, this.training);
      const ctx = tf.reshape(tf.transpose(tf.matMul(probs, heads(v, s)), [0, 2, 1, 3]), [b, l, e]);
      let y = this.outProj.forward(ctx);
      if (!batched) y = tf.squeeze(y, [0]);
      if (!needWeights) return [y];
      let w = (options.averageAttnWeights ?? true) ? tf.mean(probs, 1) : probs;
      if (!batched) w = tf.squeeze(w, [0]);
      return [y, w];
    });
    return [out[0]!, out[1] ?? null];
  }

  /** q, k, v projections; shares one matmul when the inputs are the same tensor. */
  private project(q: Tensor, k: Tensor, v: Tensor, selfAttn: boolean, kvSame: boolean): [Tensor, Tensor, Tensor] {
    const e = this.embedDim;
    const w = this.inProjWeight.variable;
    const bias = this.inProjBias?.variable ?? null;
    if (selfAttn) {
      // Slices, not tf.split: the cpu backend's split was 4× the cost of all the matmuls
      // in a ViT-B/32 forward.
      const qkv = F.linear(q, w, bias);
      return [lastAxisSlice(qkv, 0, e), lastAxisSlice(qkv, e, e), lastAxisSlice(qkv, 2 * e, e)];
    }
    const rows = (from: number, n: number): [Tensor, Tensor | null] => [
      tf.slice(w, [from * e, 0], [n * e, e]),
      bias ? tf.slice(bias, [from * e], [n * e]) : null,
    ];
    const pq = F.linear(q, ...rows(0, 1));
    if (kvSame) {
      const kv = F.linear(k, ...rows(1, 2));
      return [pq, lastAxisSlice(kv, 0, e), lastAxisSlice(kv, e, e)];
    }
    return [pq, F.linear(k, ...rows(1, 1)), F.linear(v, ...rows(2, 1))];
  }

  /** Merges `attnMask` and `keyPaddingMask` into one additive mask broadcastable to [B, H, L, S]. */
  private additiveMask(options: MultiheadAttentionForwardOptions, b: number, l: number, s: number): Tensor | null {
    const toAdditive = (m: Tensor): Tensor => (m.dtype === 'bool' ? tf.where(m, -Infinity, 0) : m);
    let mask: Tensor | null = null;
    const am = options.attnMask;
    if (am) {
      if (am.rank === 2 && am.shape[0] === l && am.shape[1] === s) {
        mask = toAdditive(am);
      } else if (am.rank === 3 && am.shape[0] === b * this.numHeads && am.shape[1] === l && am.shape[2] === s) {
        mask = tf.reshape(toAdditive(am), [b, this.numHeads, l, s]);
      } else {
        throw new Error(`MultiheadAttention: \`attnMask\` must be [${l}, ${s}] or [${b * this.numHeads}, ${l}, ${s}], got [${am.shape.join(', ')}]`);
      }
    }
    const kpm = options.keyPaddingMask;
    if (kpm) {
      if (kpm.rank !== 2 || kpm.shape[0] !== b || kpm.shape[1] !== s) {
        throw new Error(`MultiheadAttention: \`keyPaddingMask\` must be [${b}, ${s}], got [${kpm.shape.join(', ')}]`);
      }
      const pad = tf.reshape(toAdditive(kpm), [b, 1, 1, s]);
      mask = mask ? tf.add(mask, pad) : pad;
    }
    return mask;
  }
}

/** `x[..., start:start+size]`. */
function lastAxisSlice(x: Tensor, start: number, size: number): Tensor {
  const begin = x.shape.map(() => 0);
  const sizes = x.shape.map(() => -1);
  begin[x.rank - 1] = start;
  sizes[x.rank - 1] = size;
  return tf.slice(x, begin, sizes);
}
