/**
 * Pure tensor functions shared by the layers and the losses (PyTorch's `torch.nn.functional`,
 * imported as `F`). Each returns a new tensor and frees its intermediates; inputs are never
 * disposed. Functions that can be the identity (`dropout` in eval mode) return their input.
 */
import { MisconfigurationError, showValue } from '../errors.js';
import { defaultGenerator } from '../random.js';
import { tf, type Tensor } from '../tf.js';

/** How a per-sample loss is reduced: PyTorch's `reduction` argument. */
export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(reduction: string): void {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new MisconfigurationError(`\`reduction\` must be "mean", "sum" or "none", got ${showValue(reduction)}`);
  }
}

function reduce(loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'mean') return tf.mean(loss);
  if (reduction === 'sum') return tf.sum(loss);
  return loss;
}

/** Normalises a possibly negative axis against `rank`. */
function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

/**
 * `y = x·Wᵀ + b` over the last axis of `x` (any rank ≥ 1), with `weight` in PyTorch's
 * `[out, in]` layout. Leading axes are folded into one so that a single 2-D matmul runs.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = weight.shape[1]!;
  const outF = weight.shape[0]!;
  if (x.shape[x.rank - 1] !== inF) {
    throw new Error(`linear: input has ${x.shape[x.rank - 1]} features on its last axis but the weight [${weight.shape.join(', ')}] expects ${inF}`);
  }
  return tf.tidy(() => {
    const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF]);
    let y = tf.matMul(x2, weight, false, true);
    if (bias) y = tf.add(y, bias);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF]);
  });
}

/**
 * Layer normalisation over the trailing `normalizedShape.length` axes:
 * `(x − mean) / sqrt(var + eps) · weight + bias`, with the biased variance as PyTorch.
 */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const k = normalizedShape.length;
  const tail = x.shape.slice(x.rank - k);
  if (k === 0 || k > x.rank || tail.some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`layerNorm: input shape [${x.shape.join(', ')}] does not end with normalizedShape [${normalizedShape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const axes = Array.from({ length: k }, (_, i) => x.rank - k + i);
    // Centre once and reuse it for the variance (tf.moments would subtract the mean a second time).
    const centred = tf.sub(x, tf.mean(x, axes, true));
    const variance = tf.mean(tf.square(centred), axes, true);
    let y = tf.mul(centred, tf.rsqrt(tf.add(variance, eps)));
    if (weight) y = tf.mul(y, weight);
    if (bias) y = tf.add(y, bias);
    return y;
  });
}

/** Exact GELU `x·Φ(x) = 0.5·x·(1 + erf(x/√2))`, or the tanh approximation when asked. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return tf.tidy(() => {
    if (approximate === 'tanh') {
      // 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), Hendrycks & Gimpel (2016).
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  });
}

/** OpenAI CLIP's QuickGELU `x·σ(1.702·x)`. */
export function quickGelu(x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
}

/** Softmax along `axis` (default last). tfjs's kernel handles only the last axis, so others are composed. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.rank);
  if (a === x.rank - 1) return tf.softmax(x);
  return tf.tidy(() => tf.exp(tf.sub(x, tf.logSumExp(x, a, true))));
}

/** Log-softmax along `axis` (default last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.rank);
  if (a === x.rank - 1) return tf.logSoftmax(x);
  return tf.tidy(() => tf.sub(x, tf.logSumExp(x, a, true)));
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** PyTorch's `label_smoothing` ε in [0, 1]: the target becomes (1 − ε)·onehot + ε/C. */
  labelSmoothing?: number;
  reduction?: Reduction;
}

/**
 * PyTorch's `cross_entropy` for logits `[N, C]` and either integer class labels `[N]` or
 * class probabilities `[N, C]` (soft targets). With label smoothing ε the per-sample loss is
 * `−Σ_c ((1 − ε)·t_c + ε/C)·log p_c`. `reduction` 'mean' averages over N.
 *
 * Labels outside [0, C) are not checked (that would need a device-to-host read on every
 * call): they one-hot to a zero row and contribute only the smoothing term.
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const eps = options.labelSmoothing ?? 0;
  const reduction = options.reduction ?? 'mean';
  checkReduction(reduction);
  if (!(eps >= 0 && eps <= 1)) throw new MisconfigurationError(`\`labelSmoothing\` must be in [0, 1], got ${showValue(eps)}`);
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, C], got [${logits.shape.join(', ')}]`);
  const [n, c] = logits.shape as [number, number];
  const soft = target.rank === 2;
  if (soft ? target.shape[0] !== n || target.shape[1] !== c : target.rank !== 1 || target.shape[0] !== n) {
    throw new Error(`crossEntropy: target must be labels [${n}] or probabilities [${n}, ${c}], got [${target.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    let q = soft ? target : tf.oneHot(target.dtype === 'int32' ? target : tf.cast(target, 'int32'), c);
    if (q.dtype !== 'float32') q = tf.cast(q, 'float32');
    if (eps > 0) q = tf.add(tf.mul(q, 1 - eps), eps / c);
    const loss = tf.neg(tf.sum(tf.mul(q, logp), 1));
    return reduce(loss, reduction);
  });
}

/** Options of {@link binaryCrossEntropyWithLogits}. */
export interface BceWithLogitsOptions {
  reduction?: Reduction;
  /** Weight of the positive term, broadcast against the classes (PyTorch's `pos_weight`). */
  posWeight?: Tensor | null;
  /** Per-element rescaling, broadcast against the loss (PyTorch's `weight`). */
  weight?: Tensor | null;
}

/**
 * PyTorch's `binary_cross_entropy_with_logits`, in the overflow-free form
 * `(1 − y)·x + lw·(log(1 + e^(−|x|)) + max(−x, 0))` with `lw = 1 + (posWeight − 1)·y`.
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, options: BceWithLogitsOptions = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  checkReduction(reduction);
  if (logits.shape.length !== targets.shape.length || logits.shape.some((d, i) => d !== targets.shape[i])) {
    throw new Error(`binaryCrossEntropyWithLogits: targets [${targets.shape.join(', ')}] must have the logits' shape [${logits.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const y = targets.dtype === 'float32' ? targets : tf.cast(targets, 'float32');
    const softplusNeg = tf.add(tf.log1p(tf.exp(tf.neg(tf.abs(logits)))), tf.relu(tf.neg(logits)));
    const lw = options.posWeight ? tf.add(tf.mul(tf.sub(options.posWeight, 1), y), 1) : null;
    let loss = tf.add(tf.mul(tf.sub(1, y), logits), lw ? tf.mul(lw, softplusNeg) : softplusNeg);
    if (options.weight) loss = tf.mul(loss, options.weight);
    return reduce(loss, reduction);
  });
}

/** Options of {@link normalize}. */
export interface NormalizeOptions {
  /** Axis to normalise (default -1; PyTorch's default is 1, CLIP always passes -1). */
  axis?: number;
  /** Lower bound on the norm, default 1e-12 as PyTorch. */
  eps?: number;
}

/** L2-normalises along an axis: `x / max(‖x‖₂, eps)`. */
export function normalize(x: Tensor, options: NormalizeOptions = {}): Tensor {
  const axis = normAxis(options.axis ?? -1, x.rank);
  const eps = options.eps ?? 1e-12;
  return tf.tidy(() => {
    // Clamp the squared norm before the sqrt: the same value as max(‖x‖, eps), but the
    // gradient at x = 0 stays finite (sqrt's derivative at 0 would give 0·∞ = NaN).
    const sq = tf.sum(tf.square(x), axis, true);
    return tf.div(x, tf.sqrt(tf.maximum(sq, eps * eps)));
  });
}

function checkProbability(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new MisconfigurationError(`\`${name}\` must be a probability in [0, 1], got ${showValue(p)}`);
}

/**
 * Inverted dropout: zeroes each element with probability `p` (mask seeded from
 * `defaultGenerator`) and scales the rest by 1/(1 − p). Returns `x` itself when not
 * training or `p` is 0.
 */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  checkProbability('p', p);
  if (!training || p === 0) return x;
  if (p === 1) return tf.zerosLike(x);
  const seed = defaultGenerator.nextSeed();
  return tf.tidy(() => {
    const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), p);
    return tf.mul(x, tf.mul(tf.cast(keep, 'float32'), 1 / (1 - p)));
  });
}

/** Options of {@link scaledDotProductAttention}. */
export interface ScaledDotProductAttentionOptions {
  /** Dropout on the attention weights, applied whenever > 0 (as PyTorch). */
  dropoutP?: number;
  /** Adds a causal mask (query i sees keys ≤ i, aligned top-left as PyTorch). */
  isCausal?: boolean;
  /** Scale of q·kᵀ, default 1/sqrt(D). */
  scale?: number;
}

/**
 * `softmax(q·kᵀ·scale + mask)·v` for q `[..., L, D]`, k `[..., S, D]`, v `[..., S, Dv]`.
 *
 * `mask` broadcasts against `[..., L, S]` and is either additive (float, `-Infinity` to
 * hide) or boolean with PyTorch's `scaled_dot_product_attention` meaning: **true = the
 * pair takes part**. This is the opposite of `MultiheadAttention`'s boolean masks (true =
 * masked), exactly as in PyTorch, so code ported from either keeps its masks.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, mask?: Tensor | null, options: ScaledDotProductAttentionOptions = {}): Tensor {
  const d = q.shape[q.rank - 1]!;
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const p = options.dropoutP ?? 0;
  checkProbability('dropoutP', p);
  return tf.tidy(() => {
    let scores = tf.matMul(tf.mul(q, scale), k, false, true);
    if (mask) scores = tf.add(scores, mask.dtype === 'bool' ? tf.where(mask, 0, -Infinity) : mask);
    if (options.isCausal) {
      const l = q.shape[q.rank - 2]!;
      const s = k.shape[k.rank - 2]!;
      scores = tf.add(scores, causalMask(l, s));
    }
    const probs = dropout(tf.softmax(scores), p, p > 0);
    return tf.matMul(probs, v);
  });
}

/**
 * Additive causal mask `[L, S]`: 0 where key j ≤ query i, `-Infinity` above the diagonal
 * (OpenAI CLIP's text mask, `fill(-inf).triu(1)`).
 */
export function causalMask(l: number, s: number = l): Tensor {
  return tf.tidy(() => {
    const i = tf.reshape(tf.range(0, l, 1, 'int32'), [l, 1]);
    const j = tf.reshape(tf.range(0, s, 1, 'int32'), [1, s]);
    return tf.where(tf.greater(j, i), -Infinity, 0);
  });
}

/**
 * `tf.gather(table, ids)` with a scatter-add gradient (PyTorch's `F.embedding`). tfjs
 * differentiates gather through UnsortedSegmentSum, which the tfjs `cpu` backend runs as a
 * few tensor ops *per table row* (about 13 s per step for CLIP's 49,408-token vocabulary);
 * ScatterNd sums duplicate ids in one pass over the batch.
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const [vocab, dim] = table.shape as [number, number];
  const idx = ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
  const lookup = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as Tensor;
    // Saved tensors outlive the caller's tidy, which frees `idx` before backprop runs.
    (args[1] as tf.GradSaveFunc)([idx]);
    return {
      value: tf.gather(t, idx),
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.scatterND(tf.reshape(saved[0]!, [-1, 1]), tf.reshape(dy, [-1, dim]), [vocab, dim]),
    };
  });
  return lookup(table);
}
