/**
 * Llip's caption-conditioned image embedding (Lavoie et al. 2024, "Modeling Caption
 * Diversity in Contrastive Vision-Language Pretraining"): the normalised text embedding
 * t_j is the query of a multi-head cross-attention over image i's K mixture-token outputs
 * h_i1..h_iK:
 *
 *   q_j = W_q t_j + b_q,  k_ik = W_k h_ik + b_k,  v_ik = W_v h_ik + b_v   (H heads of d_h = D/H)
 *   a_ijhk = softmax_k( q_jh·k_ikh / (τ·√d_h) )
 *   z_{i|j} = W_o concat_h( Σ_k a_ijhk v_ikh ) + b_o
 *   s_ij = cos(z_{i|j}, t_j)
 *
 * Computing z for every pair costs N_i·N_t·D memory. Per head h, W_o's column block W_o^h
 * maps v_ikh into the output space: u_ihk = W_o^h v_ikh (U_i, [H·K, D]). Then
 *   ⟨z_{i|j}, t_j⟩ = Σ_hk a_ijhk (u_ihk·t_j) + b_o·t_j
 *   ‖z_{i|j}‖²   = a_ijᵀ (U_i U_iᵀ) a_ij + 2 a_ijᵀ U_i b_o + ‖b_o‖²
 * which needs only N_i·N_t·H·K numbers (the attention weights) — {@link llipSimilarity}.
 * {@link conditionedEmbeddings} materialises z the direct way, as the reference.
 */
import { tf, type Tensor } from '../../core/tf.js';
import { Linear, Module } from '../../core/nn/index.js';
import { MisconfigurationError, showValue } from '../../core/errors.js';

/** Options of {@link LlipCrossAttention}. */
export interface LlipCrossAttentionOptions {
  /** Joint embedding width D (text embedding, query and output). */
  embedDim: number;
  /** Width of the mixture tokens (the ViT width). */
  tokenDim: number;
  /** Attention heads H (D must be a multiple). */
  heads: number;
  /** Softmax temperature τ (logits are divided by τ·√d_h). Default 1. */
  temperature?: number;
}

/** The cross-attention of Llip: `q_proj [D, D]`, `k_proj`/`v_proj [D, tokenDim]`, `out_proj [D, D]`, with biases. */
export class LlipCrossAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly outProj: Linear;
  readonly heads: number;
  readonly headDim: number;
  readonly embedDim: number;
  temperature: number;

  constructor(o: LlipCrossAttentionOptions) {
    super();
    if (!(Number.isInteger(o.heads) && o.heads > 0 && o.embedDim % o.heads === 0)) {
      throw new MisconfigurationError(`Llip cross-attention: \`heads\` (${showValue(o.heads)}) must be a positive divisor of the embedding width ${o.embedDim}.`);
    }
    const t = o.temperature ?? 1;
    if (!(t > 0)) throw new MisconfigurationError(`\`--llip_temperature\` must be > 0, got ${showValue(o.temperature)}.`);
    this.embedDim = o.embedDim;
    this.heads = o.heads;
    this.headDim = o.embedDim / o.heads;
    this.temperature = t;
    this.qProj = this.registerModule('q_proj', new Linear(o.embedDim, o.embedDim));
    this.kProj = this.registerModule('k_proj', new Linear(o.tokenDim, o.embedDim));
    this.vProj = this.registerModule('v_proj', new Linear(o.tokenDim, o.embedDim));
    this.outProj = this.registerModule('out_proj', new Linear(o.embedDim, o.embedDim));
  }

  /** Attention weights `[H, Nt, Ni, K]` of texts `[Nt, D]` over mixture tokens `[Ni, K, W]`. */
  attentionWeights(tokens: Tensor, texts: Tensor): Tensor {
    return tf.tidy(() => {
      const [ni, k] = tokens.shape as [number, number, number];
      const nt = texts.shape[0]!;
      const { heads: h, headDim: dh } = this;
      const q = tf.transpose(tf.reshape(this.qProj.forward(texts), [nt, h, dh]), [1, 0, 2]); // [H, Nt, dh]
      const key = tf.transpose(tf.reshape(this.kProj.forward(tokens), [ni * k, h, dh]), [1, 2, 0]); // [H, dh, Ni·K]
      const logits = tf.mul(tf.matMul(q, key), 1 / (this.temperature * Math.sqrt(dh))); // [H, Nt, Ni·K]
      return tf.softmax(tf.reshape(logits, [h, nt, ni, k]));
    });
  }
}

function checkShapes(tokens: Tensor, texts: Tensor, attn: LlipCrossAttention): void {
  if (tokens.rank !== 3) throw new MisconfigurationError(`Llip: mixture tokens must be [N, K, width], got [${tokens.shape.join(', ')}].`);
  if (texts.rank !== 2 || texts.shape[1] !== attn.embedDim) {
    throw new MisconfigurationError(`Llip: text embeddings must be [N, ${attn.embedDim}], got [${texts.shape.join(', ')}].`);
  }
}

/**
 * The N_i × N_t matrix of s_ij = cos(z_{i|j}, t_j) without materialising z: from the
 * mixture-token outputs `[Ni, K, W]` and L2-normalised texts `[Nt, D]`.
 */
export function llipSimilarity(attn: LlipCrossAttention, tokens: Tensor, texts: Tensor): Tensor {
  checkShapes(tokens, texts, attn);
  return tf.tidy(() => {
    const [ni, k] = tokens.shape as [number, number, number];
    const nt = texts.shape[0]!;
    const { heads: h, headDim: dh, embedDim: d } = attn;
    const hk = h * k;
    const a = attn.attentionWeights(tokens, texts); // [H, Nt, Ni, K]
    const v = tf.transpose(tf.reshape(attn.vProj.forward(tokens), [ni * k, h, dh]), [1, 0, 2]); // [H, Ni·K, dh]
    // W_o is [D_out, D_in]; its input columns h·dh..(h+1)·dh act on head h: W_o^h ᵀ = [H, dh, D].
    const woT = tf.transpose(tf.reshape(attn.outProj.weight.variable, [d, h, dh]), [1, 2, 0]);
    const u = tf.reshape(tf.transpose(tf.reshape(tf.matMul(v, woT), [h, ni, k, d]), [1, 0, 2, 3]), [ni, hk, d]); // U_i [Ni, H·K, D]
    const bo = attn.outProj.bias!.variable; // [D]
    const aI = tf.reshape(tf.transpose(a, [2, 1, 0, 3]), [ni, nt, hk]); // [Ni, Nt, H·K]
    // ⟨z, t⟩: (U_i tᵀ) [Ni, H·K, Nt], weighted by a.
    const ut = tf.matMul(tf.reshape(u, [ni * hk, d]), texts, false, true); // [Ni·H·K, Nt]
    const dot = tf.add(tf.sum(tf.mul(aI, tf.transpose(tf.reshape(ut, [ni, hk, nt]), [0, 2, 1])), 2), tf.reshape(tf.matMul(texts, tf.reshape(bo, [d, 1])), [1, nt]));
    // ‖z‖² = aᵀ G a + 2 aᵀ(U b_o) + ‖b_o‖², G_i = U_i U_iᵀ.
    const g = tf.matMul(u, u, false, true); // [Ni, H·K, H·K]
    const quad = tf.sum(tf.mul(tf.matMul(aI, g), aI), 2); // [Ni, Nt]
    const ub = tf.reshape(tf.matMul(tf.reshape(u, [ni * hk, d]), tf.reshape(bo, [d, 1])), [ni, 1, hk]);
    const lin = tf.mul(tf.sum(tf.mul(aI, ub), 2), 2);
    const sq = tf.add(tf.add(quad, lin), tf.sum(tf.square(bo)));
    return tf.div(dot, tf.sqrt(tf.maximum(sq, 1e-24)));
  });
}

/** The conditioned embeddings z_{i|j}, `[Ni, Nt, D]`, computed directly (the reference and for inspection). */
export function conditionedEmbeddings(attn: LlipCrossAttention, tokens: Tensor, texts: Tensor): Tensor {
  checkShapes(tokens, texts, attn);
  return tf.tidy(() => {
    const [ni, k] = tokens.shape as [number, number, number];
    const nt = texts.shape[0]!;
    const { heads: h, headDim: dh, embedDim: d } = attn;
    const a = attn.attentionWeights(tokens, texts); // [H, Nt, Ni, K]
    const v = tf.reshape(attn.vProj.forward(tokens), [ni, k, h, dh]);
    const vH = tf.transpose(v, [2, 0, 1, 3]); // [H, Ni, K, dh]
    // o[h, j, i, :] = Σ_k a[h, j, i, k] v[h, i, k, :]
    const aH = tf.transpose(a, [0, 2, 1, 3]); // [H, Ni, Nt, K]
    const o = tf.matMul(tf.reshape(aH, [h * ni, nt, k]), tf.reshape(vH, [h * ni, k, dh])); // [H·Ni, Nt, dh]
    const concat = tf.reshape(tf.transpose(tf.reshape(o, [h, ni, nt, dh]), [1, 2, 0, 3]), [ni, nt, d]);
    return attn.outProj.forward(concat);
  });
}

/** s_ij computed from materialised z (reference for tests). */
export function llipSimilarityNaive(attn: LlipCrossAttention, tokens: Tensor, texts: Tensor): Tensor {
  return tf.tidy(() => {
    const z = conditionedEmbeddings(attn, tokens, texts);
    const zn = tf.div(z, tf.maximum(tf.norm(z, 2, -1, true), 1e-12));
    return tf.sum(tf.mul(zn, tf.expandDims(texts, 0)), -1);
  });
}
