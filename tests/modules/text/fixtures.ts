/**
 * Tiny BERT / RoBERTa / DistilBERT checkpoints for tests: HF state-dict names and shapes
 * listed independently of lightclip's modules, random weights, model directories, and
 * reference forwards written with plain tf ops (explicit head loop, -1e9 mask).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawTensor } from '../../../core/checkpoint/dtypes.js';
import { writeSafetensors } from '../../../core/checkpoint/safetensors.js';
import { Generator } from '../../../core/random.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { writeRawTorchZip } from '../weights/torchZip.js';

export const TINY_BERT = {
  model_type: 'bert',
  architectures: ['BertForMaskedLM'],
  vocab_size: 20,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 12,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
};

export const TINY_ROBERTA = {
  ...TINY_BERT,
  model_type: 'roberta',
  architectures: ['RobertaForMaskedLM'],
  hidden_act: 'gelu_new',
  max_position_embeddings: 12,
  type_vocab_size: 1,
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
};

export const TINY_DISTILBERT = {
  model_type: 'distilbert',
  vocab_size: 20,
  dim: 16,
  n_layers: 2,
  n_heads: 2,
  hidden_dim: 32,
  activation: 'gelu',
  dropout: 0.1,
  attention_dropout: 0.1,
  max_position_embeddings: 12,
  pad_token_id: 0,
};

type Spec = Array<[string, number[]]>;

/** transformers' BertModel / RobertaModel state dict for a config (pooler included). */
export function bertSpec(c: typeof TINY_BERT): Spec {
  const h = c.hidden_size;
  const s: Spec = [
    ['embeddings.word_embeddings.weight', [c.vocab_size, h]],
    ['embeddings.position_embeddings.weight', [c.max_position_embeddings, h]],
    ['embeddings.token_type_embeddings.weight', [c.type_vocab_size, h]],
    ['embeddings.LayerNorm.weight', [h]],
    ['embeddings.LayerNorm.bias', [h]],
  ];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `encoder.layer.${i}`;
    for (const n of ['query', 'key', 'value']) s.push([`${p}.attention.self.${n}.weight`, [h, h]], [`${p}.attention.self.${n}.bias`, [h]]);
    s.push([`${p}.attention.output.dense.weight`, [h, h]], [`${p}.attention.output.dense.bias`, [h]]);
    s.push([`${p}.attention.output.LayerNorm.weight`, [h]], [`${p}.attention.output.LayerNorm.bias`, [h]]);
    s.push([`${p}.intermediate.dense.weight`, [c.intermediate_size, h]], [`${p}.intermediate.dense.bias`, [c.intermediate_size]]);
    s.push([`${p}.output.dense.weight`, [h, c.intermediate_size]], [`${p}.output.dense.bias`, [h]]);
    s.push([`${p}.output.LayerNorm.weight`, [h]], [`${p}.output.LayerNorm.bias`, [h]]);
  }
  s.push(['pooler.dense.weight', [h, h]], ['pooler.dense.bias', [h]]);
  return s;
}

/** transformers' DistilBertModel state dict. */
export function distilSpec(c: typeof TINY_DISTILBERT): Spec {
  const d = c.dim;
  const s: Spec = [
    ['embeddings.word_embeddings.weight', [c.vocab_size, d]],
    ['embeddings.position_embeddings.weight', [c.max_position_embeddings, d]],
    ['embeddings.LayerNorm.weight', [d]],
    ['embeddings.LayerNorm.bias', [d]],
  ];
  for (let i = 0; i < c.n_layers; i++) {
    const p = `transformer.layer.${i}`;
    for (const n of ['q_lin', 'k_lin', 'v_lin', 'out_lin']) s.push([`${p}.attention.${n}.weight`, [d, d]], [`${p}.attention.${n}.bias`, [d]]);
    s.push([`${p}.sa_layer_norm.weight`, [d]], [`${p}.sa_layer_norm.bias`, [d]]);
    s.push([`${p}.ffn.lin1.weight`, [c.hidden_dim, d]], [`${p}.ffn.lin1.bias`, [c.hidden_dim]]);
    s.push([`${p}.ffn.lin2.weight`, [d, c.hidden_dim]], [`${p}.ffn.lin2.bias`, [d]]);
    s.push([`${p}.output_layer_norm.weight`, [d]], [`${p}.output_layer_norm.bias`, [d]]);
  }
  return s;
}

/** Random F32 weights; LayerNorm gains near 1 so the reference is not degenerate. */
export function randomRaw(spec: Spec, seed = 1): Record<string, RawTensor> {
  const g = new Generator(seed);
  const out: Record<string, RawTensor> = {};
  for (const [name, shape] of spec) {
    const n = shape.reduce((a, b) => a * b, 1);
    const gain = /(LayerNorm|layer_norm)\.weight$/.test(name);
    out[name] = { dtype: 'F32', shape, data: Float32Array.from({ length: n }, () => (gain ? g.uniform(0.8, 1.2) : g.uniform(-0.5, 0.5))) };
  }
  return out;
}

/** Options of {@link writeModelDir}. */
export interface ModelDirOptions {
  format?: 'safetensors' | 'bin';
  /** Key prefix as in task checkpoints (`bert.`), and extra head tensors. */
  prefix?: string;
  extra?: Record<string, RawTensor>;
  /** Rename LayerNorm weight/bias to TF-era gamma/beta. */
  gammaBeta?: boolean;
}

/** Writes `config.json` and the weights (HF file names) into `dir`. */
export async function writeModelDir(dir: string, config: object, raw: Record<string, RawTensor>, o: ModelDirOptions = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const named: Record<string, RawTensor> = {};
  for (const [k, v] of Object.entries(raw)) {
    let key = `${o.prefix ?? ''}${k}`;
    if (o.gammaBeta) key = key.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
    named[key] = v;
  }
  Object.assign(named, o.extra ?? {});
  if (o.format === 'bin') writeRawTorchZip(join(dir, 'pytorch_model.bin'), named);
  else await writeSafetensors(join(dir, 'model.safetensors'), named);
  return dir;
}

/** The raw weights as tfjs tensors (caller disposes). */
export function asTensors(raw: Record<string, RawTensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, tf.tensor(v.data as Float32Array, [...v.shape])]));
}

function ln(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), w), b);
}

function dense(x: Tensor, w: Record<string, Tensor>, name: string): Tensor {
  return tf.add(tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]!]), w[`${name}.weight`]!, false, true).reshape([...x.shape.slice(0, -1), -1]), w[`${name}.bias`]!);
}

export type Act = 'gelu' | 'gelu_new';

function act(x: Tensor, a: Act): Tensor {
  if (a === 'gelu') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  const c = Math.sqrt(2 / Math.PI);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(c, tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
}

/** Attention with an explicit loop over heads and a -1e9 additive mask; returns the merged context. */
function attention(q: Tensor, k: Tensor, v: Tensor, mask: number[][], heads: number): Tensor {
  const [b, l, h] = q.shape as [number, number, number];
  const d = h / heads;
  const bias = tf.tensor3d(mask.map((row) => [row.map((m) => (m ? 0 : -1e9))]), [b, 1, l]);
  const ctx: Tensor[] = [];
  for (let i = 0; i < heads; i++) {
    const sl = (t: Tensor): Tensor => tf.slice(t, [0, 0, i * d], [b, l, d]);
    const scores = tf.add(tf.div(tf.matMul(sl(q), sl(k), false, true), Math.sqrt(d)), bias);
    ctx.push(tf.matMul(tf.softmax(scores), sl(v)));
  }
  return tf.concat(ctx, 2);
}

/** transformers' BERT/RoBERTa forward (eval mode) composed from plain ops over the raw weights. */
export function referenceBert(
  c: typeof TINY_BERT,
  w: Record<string, Tensor>,
  ids: number[][],
  mask: number[][],
  positions: number[][],
): { last: Tensor; pooled: Tensor } {
  return tf.tidy(() => {
    const b = ids.length;
    const l = ids[0]!.length;
    const gather = (name: string, idx: number[][]): Tensor => tf.gather(w[name]!, tf.tensor2d(idx, [b, l], 'int32'));
    let x = tf.add(tf.add(gather('embeddings.word_embeddings.weight', ids), gather('embeddings.position_embeddings.weight', positions)), gather('embeddings.token_type_embeddings.weight', ids.map((r) => r.map(() => 0))));
    x = ln(x, w['embeddings.LayerNorm.weight']!, w['embeddings.LayerNorm.bias']!, c.layer_norm_eps);
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `encoder.layer.${i}`;
      const ctx = attention(dense(x, w, `${p}.attention.self.query`), dense(x, w, `${p}.attention.self.key`), dense(x, w, `${p}.attention.self.value`), mask, c.num_attention_heads);
      const a = ln(tf.add(dense(ctx, w, `${p}.attention.output.dense`), x), w[`${p}.attention.output.LayerNorm.weight`]!, w[`${p}.attention.output.LayerNorm.bias`]!, c.layer_norm_eps);
      const inter = act(dense(a, w, `${p}.intermediate.dense`), c.hidden_act as Act);
      x = ln(tf.add(dense(inter, w, `${p}.output.dense`), a), w[`${p}.output.LayerNorm.weight`]!, w[`${p}.output.LayerNorm.bias`]!, c.layer_norm_eps);
    }
    const first = tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, c.hidden_size]), [b, c.hidden_size]);
    return { last: x, pooled: tf.tanh(dense(first, w, 'pooler.dense')) };
  });
}

/** transformers' DistilBERT forward (eval mode) from plain ops. */
export function referenceDistilBert(c: typeof TINY_DISTILBERT, w: Record<string, Tensor>, ids: number[][], mask: number[][]): Tensor {
  return tf.tidy(() => {
    const b = ids.length;
    const l = ids[0]!.length;
    const pos = ids.map((r) => r.map((_, j) => j));
    let x = tf.add(tf.gather(w['embeddings.word_embeddings.weight']!, tf.tensor2d(ids, [b, l], 'int32')), tf.gather(w['embeddings.position_embeddings.weight']!, tf.tensor2d(pos, [b, l], 'int32')));
    x = ln(x, w['embeddings.LayerNorm.weight']!, w['embeddings.LayerNorm.bias']!, 1e-12);
    for (let i = 0; i < c.n_layers; i++) {
      const p = `transformer.layer.${i}`;
      const ctx = attention(dense(x, w, `${p}.attention.q_lin`), dense(x, w, `${p}.attention.k_lin`), dense(x, w, `${p}.attention.v_lin`), mask, c.n_heads);
      const a = ln(tf.add(dense(ctx, w, `${p}.attention.out_lin`), x), w[`${p}.sa_layer_norm.weight`]!, w[`${p}.sa_layer_norm.bias`]!, 1e-12);
      const f = dense(act(dense(a, w, `${p}.ffn.lin1`), 'gelu'), w, `${p}.ffn.lin2`);
      x = ln(tf.add(f, a), w[`${p}.output_layer_norm.weight`]!, w[`${p}.output_layer_norm.bias`]!, 1e-12);
    }
    return x;
  });
}

/** RoBERTa positions computed by hand: a running count of non-pad tokens, offset by the pad id. */
export function robertaPositions(ids: number[][], pad: number): number[][] {
  return ids.map((row) => {
    let n = 0;
    return row.map((t) => (t === pad ? pad : pad + ++n));
  });
}
