/**
 * Independent compositions of OpenAI CLIP's layers from plain tf ops and a state dict, written
 * from `clip/model.py` rather than from lightclip's modules, to test the modules against.
 */
import { fixture } from '../../core/nn/helpers.js';
import type { Module, StateDict } from '../../../core/nn/index.js';
import { tf, type Tensor } from '../../../core/tf.js';

export { expectClose, fixture, values } from '../../core/nn/helpers.js';

/** Shifts every parameter by a deterministic perturbation and sets non-trivial BatchNorm statistics, so that zero/one initialisations (LN gains, bn3) cannot hide a wiring error. */
export function perturb(model: Module, amount = 0.05): void {
  model.namedParameters().forEach(([, p], i) => {
    tf.tidy(() => p.variable.assign(tf.add(p.variable, tf.mul(fixture(p.shape, i + 2), amount))));
  });
  model.namedBuffers().forEach(([name, b], i) => {
    if (name.endsWith('running_mean')) tf.tidy(() => b.assign(tf.mul(fixture(b.shape, i + 3), 0.1)));
    if (name.endsWith('running_var')) tf.tidy(() => b.assign(tf.add(tf.abs(fixture(b.shape, i + 5)), 0.5)));
  });
}

/** The state dict's tensor under `key` (a leading '.' from an empty prefix is dropped), failing loudly when the name does not exist. */
export function w(sd: StateDict, key: string): Tensor {
  const t = sd[key.startsWith('.') ? key.slice(1) : key];
  if (!t) throw new Error(`state dict has no key ${key}`);
  return t;
}

/** x·Wᵀ + b for PyTorch-layout W, on any rank. */
export function refLinear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = tf.matMul(tf.reshape(x, [-1, weight.shape[1]!]), tf.transpose(weight));
  return tf.reshape(bias ? tf.add(y, bias) : y, [...x.shape.slice(0, -1), weight.shape[0]!]);
}

/** LayerNorm over the last axis with the biased variance, eps 1e-5. */
export function refLayerNorm(x: Tensor, sd: StateDict, prefix: string): Tensor {
  const mean = tf.mean(x, -1, true);
  const variance = tf.mean(tf.square(tf.sub(x, mean)), -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), w(sd, `${prefix}.weight`)), w(sd, `${prefix}.bias`));
}

/** Additive causal mask built element by element: -inf above the diagonal. */
export function refCausalMask(l: number): Tensor {
  const rows = Array.from({ length: l }, (_, i) => Array.from({ length: l }, (_, j) => (j > i ? -Infinity : 0)));
  return tf.tensor2d(rows);
}

/** nn.MultiheadAttention self-attention, with q, k, v cut out of in_proj by hand and a loop over heads. */
export function refSelfAttention(x: Tensor, sd: StateDict, prefix: string, heads: number, mask: Tensor | null): Tensor {
  const e = x.shape[2]!;
  const d = e / heads;
  const inW = w(sd, `${prefix}.in_proj_weight`);
  const inB = w(sd, `${prefix}.in_proj_bias`);
  const proj = (i: number): Tensor => refLinear(x, tf.slice(inW, [i * e, 0], [e, e]), tf.slice(inB, [i * e], [e]));
  const [q, k, v] = [proj(0), proj(1), proj(2)];
  const outs: Tensor[] = [];
  for (let h = 0; h < heads; h++) {
    const cut = (t: Tensor): Tensor => tf.slice(t, [0, 0, h * d], [-1, -1, d]);
    let scores = tf.div(tf.matMul(cut(q), cut(k), false, true), Math.sqrt(d));
    if (mask) scores = tf.add(scores, mask);
    const m = tf.max(scores, -1, true);
    const ex = tf.exp(tf.sub(scores, m));
    outs.push(tf.matMul(tf.div(ex, tf.sum(ex, -1, true)), cut(v)));
  }
  return refLinear(tf.concat(outs, 2), w(sd, `${prefix}.out_proj.weight`), w(sd, `${prefix}.out_proj.bias`));
}

/** OpenAI's ResidualAttentionBlock on [B, L, D]. */
export function refBlock(x: Tensor, sd: StateDict, prefix: string, heads: number, mask: Tensor | null, quickGelu = true): Tensor {
  const x1 = tf.add(x, refSelfAttention(refLayerNorm(x, sd, `${prefix}.ln_1`), sd, `${prefix}.attn`, heads, mask));
  const hid = refLinear(refLayerNorm(x1, sd, `${prefix}.ln_2`), w(sd, `${prefix}.mlp.c_fc.weight`), w(sd, `${prefix}.mlp.c_fc.bias`));
  const act = quickGelu
    ? tf.mul(hid, tf.div(1, tf.add(1, tf.exp(tf.mul(hid, -1.702)))))
    : tf.mul(tf.mul(hid, 0.5), tf.add(1, tf.erf(tf.div(hid, Math.SQRT2))));
  return tf.add(x1, refLinear(act, w(sd, `${prefix}.mlp.c_proj.weight`), w(sd, `${prefix}.mlp.c_proj.bias`)));
}

/** OpenAI's Transformer: `layers` blocks under `${prefix}.resblocks.N`. */
export function refTransformer(x: Tensor, sd: StateDict, prefix: string, layers: number, heads: number, mask: Tensor | null, quickGelu = true): Tensor {
  let h = x;
  for (let i = 0; i < layers; i++) h = refBlock(h, sd, `${prefix}.resblocks.${i}`, heads, mask, quickGelu);
  return h;
}

/** OpenAI's VisionTransformer on NHWC images: patchify by reshape, class token, positions, ln_pre, blocks, ln_post on the class token, proj. */
export function refVisionTransformer(images: Tensor, sd: StateDict, prefix: string, patch: number, layers: number, heads: number): Tensor {
  const [b, size] = images.shape as [number, number, number, number];
  const g = size / patch;
  const width = w(sd, `${prefix}.class_embedding`).shape[0]!;
  // [B, gh, p, gw, p, C] → [B, gh, gw, C, p, p]: each patch flattened in the conv weight's (c, kh, kw) order.
  const patches = tf.reshape(tf.transpose(tf.reshape(images, [b, g, patch, g, patch, 3]), [0, 1, 3, 5, 2, 4]), [b, g * g, 3 * patch * patch]);
  const emb = refLinear(patches, tf.reshape(w(sd, `${prefix}.conv1.weight`), [width, 3 * patch * patch]));
  const cls = tf.tile(tf.reshape(w(sd, `${prefix}.class_embedding`), [1, 1, width]), [b, 1, 1]);
  let x = tf.add(tf.concat([cls, emb], 1), w(sd, `${prefix}.positional_embedding`));
  x = refLayerNorm(x, sd, `${prefix}.ln_pre`);
  x = refTransformer(x, sd, `${prefix}.transformer`, layers, heads, null);
  const first = refLayerNorm(tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, width]), [b, width]), sd, `${prefix}.ln_post`);
  return tf.matMul(first, w(sd, `${prefix}.proj`));
}

/** OpenAI's encode_text: embeddings + positions, causal blocks, ln_final, the row at argmax(tokens), text_projection. */
export function refEncodeText(tokens: number[][], sd: StateDict, layers: number, heads: number, prefix = ''): Tensor {
  const p = prefix ? `${prefix}.` : '';
  const l = tokens[0]!.length;
  const x0 = tf.add(tf.gather(w(sd, `${p}token_embedding.weight`), tf.tensor2d(tokens, undefined, 'int32')), w(sd, `${p}positional_embedding`));
  const x = refLayerNorm(refTransformer(x0, sd, `${p}transformer`, layers, heads, refCausalMask(l)), sd, `${p}ln_final`);
  const rows = tokens.map((row, i) => {
    const eot = row.indexOf(Math.max(...row));
    return tf.reshape(tf.slice(x, [i, eot, 0], [1, 1, -1]), [-1]);
  });
  return tf.matMul(tf.stack(rows), w(sd, `${p}text_projection`));
}

/** BatchNorm: eval mode from the running statistics, training mode from the batch's (biased variance). */
export function refBatchNorm(x: Tensor, sd: StateDict, prefix: string, training = false): Tensor {
  if (training) {
    const mean = tf.mean(x, [0, 1, 2]);
    const variance = tf.mean(tf.square(tf.sub(x, mean)), [0, 1, 2]);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), w(sd, `${prefix}.weight`)), w(sd, `${prefix}.bias`));
  }
  const scale = tf.div(w(sd, `${prefix}.weight`), tf.sqrt(tf.add(w(sd, `${prefix}.running_var`), 1e-5)));
  return tf.add(tf.mul(tf.sub(x, w(sd, `${prefix}.running_mean`)), scale), w(sd, `${prefix}.bias`));
}

/** Convolution of NHWC `x` with a PyTorch-layout weight, zero padding `pad` on each side. */
export function refConv(x: Tensor, weight: Tensor, stride = 1, pad = 0): Tensor {
  const xp = pad ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
  return tf.conv2d(xp as tf.Tensor4D, tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D, stride, 'valid');
}

/** k×k average pooling with stride k, by reshape and mean (not tf.avgPool). */
export function refAvgPool(x: Tensor, k: number): Tensor {
  if (k === 1) return x;
  const [b, h, wd, c] = x.shape as [number, number, number, number];
  return tf.mean(tf.reshape(x, [b, h / k, k, wd / k, k, c]), [2, 4]);
}

/** OpenAI's Bottleneck (eval mode unless `training`). */
export function refBottleneck(x: Tensor, sd: StateDict, prefix: string, stride: number, training = false): Tensor {
  const bn = (t: Tensor, name: string): Tensor => refBatchNorm(t, sd, `${prefix}.${name}`, training);
  let h = tf.relu(bn(refConv(x, w(sd, `${prefix}.conv1.weight`)), 'bn1'));
  h = tf.relu(bn(refConv(h, w(sd, `${prefix}.conv2.weight`), 1, 1), 'bn2'));
  h = bn(refConv(refAvgPool(h, stride), w(sd, `${prefix}.conv3.weight`)), 'bn3');
  const identity = `${prefix}.downsample.0.weight`.replace(/^\./, '') in sd
    ? bn(refConv(refAvgPool(x, stride), w(sd, `${prefix}.downsample.0.weight`)), 'downsample.1')
    : x;
  return tf.relu(tf.add(h, identity));
}

/** OpenAI's AttentionPool2d on NHWC: mean token first, positions, the mean token as the only query, one loop per head. */
export function refAttentionPool(x: Tensor, sd: StateDict, prefix: string, heads: number): Tensor {
  const [b, s, , c] = x.shape as [number, number, number, number];
  const d = c / heads;
  const flat = tf.reshape(x, [b, s * s, c]);
  const tokens = tf.add(tf.concat([tf.mean(flat, 1, true), flat], 1), w(sd, `${prefix}.positional_embedding`));
  const lin = (name: string, t: Tensor): Tensor => refLinear(t, w(sd, `${prefix}.${name}.weight`), w(sd, `${prefix}.${name}.bias`));
  const q = lin('q_proj', tf.slice(tokens, [0, 0, 0], [b, 1, c]));
  const k = lin('k_proj', tokens);
  const v = lin('v_proj', tokens);
  const outs: Tensor[] = [];
  for (let h = 0; h < heads; h++) {
    const cut = (t: Tensor): Tensor => tf.slice(t, [0, 0, h * d], [-1, -1, d]);
    const scores = tf.div(tf.matMul(cut(q), cut(k), false, true), Math.sqrt(d));
    const ex = tf.exp(tf.sub(scores, tf.max(scores, -1, true)));
    outs.push(tf.matMul(tf.div(ex, tf.sum(ex, -1, true)), cut(v)));
  }
  return tf.reshape(lin('c_proj', tf.concat(outs, 2)), [b, -1]);
}

/** OpenAI's ModifiedResNet in eval mode: stem, four stages (first block strided from stage 2), attention pool. */
export function refModifiedResNet(images: Tensor, sd: StateDict, prefix: string, layers: readonly number[], heads: number): Tensor {
  let x = tf.relu(refBatchNorm(refConv(images, w(sd, `${prefix}.conv1.weight`), 2, 1), sd, `${prefix}.bn1`));
  x = tf.relu(refBatchNorm(refConv(x, w(sd, `${prefix}.conv2.weight`), 1, 1), sd, `${prefix}.bn2`));
  x = tf.relu(refBatchNorm(refConv(x, w(sd, `${prefix}.conv3.weight`), 1, 1), sd, `${prefix}.bn3`));
  x = refAvgPool(x, 2);
  layers.forEach((blocks, k) => {
    for (let m = 0; m < blocks; m++) x = refBottleneck(x, sd, `${prefix}.layer${k + 1}.${m}`, k > 0 && m === 0 ? 2 : 1);
  });
  return refAttentionPool(x, sd, `${prefix}.attnpool`, heads);
}

/** A token batch `[B, L]`: SOT, `lengths[i]` ids, EOT, zero padding. */
export function tokenRows(lengths: number[], contextLength: number): number[][] {
  return lengths.map((n, r) => Array.from({ length: contextLength }, (_, i) => {
    if (i === 0) return 49406;
    if (i <= n) return 300 + ((i * 37 + r * 101) % 4000);
    return i === n + 1 ? 49407 : 0;
  }));
}
