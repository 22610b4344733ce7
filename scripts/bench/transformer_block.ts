/**
 * A CLIP residual attention block (pre-LN, multi-head self-attention, QuickGELU MLP) built from
 * tf ops with PyTorch-layout weights, and one AdamW training step on it. The benchmark times it
 * against the same block in PyTorch (torch_bench.py); the tests use it to check that a whole
 * training step gives the same numbers on `cpu` and `lightclip-cpu`.
 */
import type { Tensor, Variable } from '../../core/tf.js';
import { tf } from '../../core/tf.js';
import { adamwStep, gelu, geluComposed, layerNorm, layerNormComposed, scaledSoftmax, softmaxComposed } from '../../core/native/fused.js';
import type { AdamWSlot } from '../../core/native/fused.js';

/** Block hyper-parameters (CLIP ViT-B/32's vision tower: width 768, 12 heads, 50 tokens). */
export interface BlockConfig {
  batch: number;
  tokens: number;
  width: number;
  heads: number;
  /** Causal mask (text tower) or none (vision tower). */
  causal: boolean;
}

/** Parameters, named as in OpenAI CLIP's `resblocks.N`. */
export type BlockParams = Record<string, Variable>;

/** Deterministic parameters (small normal values; LayerNorm gains 1, biases 0). */
export function makeBlockParams(cfg: BlockConfig, seed = 1): BlockParams {
  const d = cfg.width;
  const w = (shape: number[], s: number) => tf.variable(tf.randomNormal(shape, 0, 0.02, 'float32', seed + s));
  return {
    'ln_1.weight': tf.variable(tf.ones([d])),
    'ln_1.bias': tf.variable(tf.zeros([d])),
    'attn.in_proj_weight': w([3 * d, d], 1),
    'attn.in_proj_bias': tf.variable(tf.zeros([3 * d])),
    'attn.out_proj.weight': w([d, d], 2),
    'attn.out_proj.bias': tf.variable(tf.zeros([d])),
    'ln_2.weight': tf.variable(tf.ones([d])),
    'ln_2.bias': tf.variable(tf.zeros([d])),
    'mlp.c_fc.weight': w([4 * d, d], 3),
    'mlp.c_fc.bias': tf.variable(tf.zeros([4 * d])),
    'mlp.c_proj.weight': w([d, 4 * d], 4),
    'mlp.c_proj.bias': tf.variable(tf.zeros([d])),
  };
}

/** y = x @ W^T + b for PyTorch-layout W [out, in], on rank-3 x. */
function linear(x: Tensor, wt: Tensor, b: Tensor): Tensor {
  const [bs, n, din] = x.shape;
  const y = tf.matMul(x.reshape([bs * n, din]), wt, false, true).add(b);
  return y.reshape([bs, n, wt.shape[0]]);
}

/**
 * The block's forward pass on x [batch, tokens, width]. `fused` uses the fused LayerNorm,
 * QuickGELU and attention softmax of core/native/fused.ts; otherwise plain tf ops.
 */
export function blockForward(p: BlockParams, x: Tensor, cfg: BlockConfig, fused: boolean): Tensor {
  const ln = fused ? layerNorm : layerNormComposed;
  const [bs, n, d] = x.shape;
  const h = cfg.heads;
  const dh = d / h;
  const a = ln(x, p['ln_1.weight'], p['ln_1.bias'], 1e-5);
  const qkv = linear(a, p['attn.in_proj_weight'], p['attn.in_proj_bias']);
  const [q, k, v] = tf.split(qkv, 3, 2).map((t) => t.reshape([bs, n, h, dh]).transpose([0, 2, 1, 3]));
  let scores = tf.matMul(q, k, false, true);
  if (cfg.causal) {
    const mask = tf.linalg.bandPart(tf.ones([n, n]), -1, 0).sub(1).mul(1e9);
    scores = scores.add(mask);
  }
  const scale = 1 / Math.sqrt(dh);
  const attn = fused ? scaledSoftmax(scores, scale) : softmaxComposed(scores, scale);
  const ctx = tf.matMul(attn, v).transpose([0, 2, 1, 3]).reshape([bs, n, d]);
  const x1 = x.add(linear(ctx, p['attn.out_proj.weight'], p['attn.out_proj.bias']));
  const b2 = ln(x1, p['ln_2.weight'], p['ln_2.bias'], 1e-5);
  const hid = linear(b2, p['mlp.c_fc.weight'], p['mlp.c_fc.bias']);
  const act = fused ? gelu(hid, 'quick') : geluComposed(hid, 'quick');
  return x1.add(linear(act, p['mlp.c_proj.weight'], p['mlp.c_proj.bias']));
}

/** Optimiser state for {@link trainStep}. */
export interface BlockTrainer {
  params: BlockParams;
  m: Record<string, Variable>;
  v: Record<string, Variable>;
  step: number;
}

/** A trainer with zeroed AdamW moments. */
export function makeTrainer(params: BlockParams): BlockTrainer {
  const m: Record<string, Variable> = {};
  const v: Record<string, Variable> = {};
  for (const [k, p] of Object.entries(params)) {
    m[k] = tf.variable(tf.zerosLike(p));
    v[k] = tf.variable(tf.zerosLike(p));
  }
  return { params, m, v, step: 0 };
}

/**
 * One training step: loss = mean(block(x)^2), backward, AdamW (CLIP's ViT settings: betas
 * (0.9, 0.98), eps 1e-6, weight decay 0.2 on matrices only). Returns the loss.
 */
export function trainStep(tr: BlockTrainer, x: Tensor, cfg: BlockConfig, fused: boolean, lr = 1e-3): number {
  const names = Object.keys(tr.params);
  const { value, grads } = tf.variableGrads(() => blockForward(tr.params, x, cfg, fused).square().mean() as tf.Scalar,
    names.map((k) => tr.params[k]));
  tr.step += 1;
  const base = { lr, beta1: 0.9, beta2: 0.98, eps: 1e-6, step: tr.step };
  // two groups as CLIP recipes use: decay on matrices, none on gains and biases
  for (const decay of [true, false]) {
    const slots: AdamWSlot[] = names
      .filter((k) => (tr.params[k].shape.length >= 2) === decay)
      .map((k) => ({ param: tr.params[k], grad: grads[tr.params[k].name], m: tr.m[k], v: tr.v[k] }));
    adamwStep(slots, { ...base, weightDecay: decay ? 0.2 : 0 });
  }
  const loss = value.dataSync()[0];
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  return loss;
}

/** Dispose every variable of a trainer. */
export function disposeTrainer(tr: BlockTrainer): void {
  for (const group of [tr.params, tr.m, tr.v]) for (const v of Object.values(group)) v.dispose();
}
