/**
 * OpenAI CLIP's transformer (`clip/model.py`: `ResidualAttentionBlock`, `Transformer`), shared
 * by the ViT image tower and the text tower, with OpenAI's state-dict names
 * (`resblocks.N.{ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj}`).
 *
 * Sequences are batch-first `[B, L, D]` throughout. OpenAI permutes to `[L, B, D]` because
 * `nn.MultiheadAttention` wanted sequence-first inputs in 2021; the weights are the same
 * either way, and staying batch-first saves two transposes per tower.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { gelu, layerNorm, scaledSoftmax, splitHeads } from '../../core/native/fused.js';
import { F, GELU, LayerNorm, Linear, Module, ModuleList, MultiheadAttention, QuickGELU, Sequential } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';

/**
 * `ln.forward(x)` through the fused LayerNorm kernel when the native backend is active (one
 * pass each way instead of about eight tf ops); the same values otherwise.
 */
export function applyLayerNorm(ln: LayerNorm, x: Tensor): Tensor {
  if (!ln.weight || !ln.bias || ln.normalizedShape.length !== 1) return ln.forward(x);
  return layerNorm(x, ln.weight.variable, ln.bias.variable, ln.eps);
}

/**
 * `x·Wᵀ + b` (PyTorch-layout W `[out, in]`, any rank of x) as one fused matmul-with-bias
 * kernel (tfjs' _FusedMatMul; native on lightclip-cpu). Same values as `F.linear`, whose
 * separate bias Add makes the gradient tape keep the pre-bias product alive until backprop:
 * one more activation per linear layer, about 0.5 GB in a ViT-B/32 batch-16 step.
 */
export function fusedLinear(x: Tensor, weight: Tensor, bias: Tensor | null | undefined): Tensor {
  const [outF, inF] = weight.shape as [number, number];
  if (x.shape[x.rank - 1] !== inF) return F.linear(x, weight, bias); // F.linear's error message
  return tf.tidy(() => {
    const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF]);
    const y = tf.fused.matMul({ a: x2 as tf.Tensor2D, b: weight as tf.Tensor2D, transposeB: true, bias: bias ?? undefined });
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF]);
  });
}

/** `linear.forward(x)` through {@link fusedLinear}. */
function applyLinear(linear: Linear, x: Tensor): Tensor {
  return fusedLinear(x, linear.weight.variable, linear.bias?.variable);
}

/** Options of {@link ResidualAttentionBlock} and {@link Transformer}. */
export interface TransformerOptions {
  /**
   * MLP activation: QuickGELU `x·σ(1.702x)` (true, what OpenAI trained with) or exact GELU
   * (false, open_clip's default for its own models). Default true.
   */
  quickGelu?: boolean;
  /** Hidden width of the MLP as a multiple of the model width (default 4, as OpenAI). */
  mlpRatio?: number;
}

/**
 * A pre-LN transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`, where `mlp` is
 * `c_fc` (width → 4·width), the GELU, and `c_proj` (4·width → width).
 *
 * `mlp` is a `Sequential` with named children, as OpenAI's `OrderedDict`, so its keys are
 * `mlp.c_fc.weight` and `mlp.c_proj.weight` (the activation has no parameters).
 */
export class ResidualAttentionBlock extends Module {
  readonly attn: MultiheadAttention;
  readonly ln1: LayerNorm;
  readonly mlp: Sequential;
  readonly ln2: LayerNorm;
  readonly cFc: Linear;
  readonly cProj: Linear;
  readonly quickGelu: boolean;

  /** @throws MisconfigurationError when `width` is not divisible by `heads` or `mlpRatio` is not positive. */
  constructor(
    readonly width: number,
    readonly heads: number,
    options: TransformerOptions = {},
  ) {
    super();
    const ratio = options.mlpRatio ?? 4;
    const hidden = Math.round(width * ratio);
    if (!(ratio > 0) || hidden < 1) throw new MisconfigurationError(`\`mlpRatio\` must be > 0, got ${showValue(options.mlpRatio)}`);
    // Registration order is OpenAI's (attn, ln_1, mlp, ln_2), so stateDict() lists keys as PyTorch does.
    this.attn = this.registerModule('attn', new MultiheadAttention(width, heads));
    this.ln1 = this.registerModule('ln_1', new LayerNorm(width));
    this.cFc = new Linear(width, hidden);
    this.cProj = new Linear(hidden, width);
    this.quickGelu = options.quickGelu ?? true;
    const act = this.quickGelu ? new QuickGELU() : new GELU();
    this.mlp = this.registerModule('mlp', new Sequential([['c_fc', this.cFc], ['gelu', act], ['c_proj', this.cProj]]));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(width));
  }

  /**
   * `x` is `[B, L, width]`; `attnMask` an optional additive `[L, L]` mask (`-Infinity`
   * hides a pair; `F.causalMask(L)` for text). Returns a new `[B, L, width]` tensor.
   */
  forward(x: Tensor, attnMask: Tensor | null = null): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.width) {
      throw new Error(`ResidualAttentionBlock expects [B, L, ${this.width}], got [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const x1 = tf.add(x, this.selfAttention(applyLayerNorm(this.ln1, x), attnMask));
      const hidden = applyLinear(this.cFc, applyLayerNorm(this.ln2, x1));
      return tf.add(x1, applyLinear(this.cProj, gelu(hidden, this.quickGelu ? 'quick' : 'erf')));
    });
  }

  /**
   * `attn(h, h, h)` with `attn`'s own weights, computed here rather than by
   * `MultiheadAttention.forward` for speed: the packed projection `[B, L, 3·E]` is split into
   * q, k, v heads `[B, H, L, d]` by `splitHeads` (on lightclip-cpu one native copy each way;
   * elsewhere a transpose and contiguous slices; tfjs's SplitV along the last axis, which
   * `MultiheadAttention` uses, took 4× as long as all the matmuls of a ViT-B/32 forward), and
   * the 1/√d scale is folded into a fused softmax. Same values as PyTorch's, which scales q
   * before the product.
   */
  private selfAttention(h: Tensor, attnMask: Tensor | null): Tensor {
    const [b, l, e] = h.shape as [number, number, number];
    const { numHeads: nh, headDim: d } = this.attn;
    const qkv = fusedLinear(h, this.attn.inProjWeight.variable, this.attn.inProjBias?.variable);
    const [q, k, v] = splitHeads(qkv, nh);
    let scores = tf.matMul(q, k, false, true); // [B, H, L, L]
    if (attnMask) scores = tf.add(scores, attnMask);
    const probs = F.dropout(scaledSoftmax(scores, d ** -0.5), this.attn.dropout, this.attn.training);
    const ctx = tf.reshape(tf.transpose(tf.matMul(probs, v), [0, 2, 1, 3]), [b, l, e]);
    return applyLinear(this.attn.outProj, ctx);
  }
}

/**
 * A stack of {@link ResidualAttentionBlock}s under `resblocks.N` (OpenAI's `Transformer`;
 * `width`, `layers` and `heads` are its attributes too, read by CLIP's initialisation).
 */
export class Transformer extends Module {
  readonly resblocks: ModuleList<ResidualAttentionBlock>;

  /** @throws MisconfigurationError for a negative or fractional `layers`, or `width` not divisible by `heads`. */
  constructor(
    readonly width: number,
    readonly layers: number,
    readonly heads: number,
    options: TransformerOptions = {},
  ) {
    super();
    if (!Number.isInteger(layers) || layers < 0) {
      throw new MisconfigurationError(`\`layers\` must be a non-negative integer, got ${showValue(layers)}`);
    }
    const blocks = Array.from({ length: layers }, () => new ResidualAttentionBlock(width, heads, options));
    this.resblocks = this.registerModule('resblocks', new ModuleList(blocks));
  }

  /** Runs every block on `x` `[B, L, width]` with the same optional additive `[L, L]` mask. */
  forward(x: Tensor, attnMask: Tensor | null = null): Tensor {
    let h = x;
    for (const block of this.resblocks) {
      const next = block.forward(h, attnMask);
      // Free each block's input as soon as the next one exists (never the caller's `x`).
      // Safe under a gradient tape too: tfjs keeps its own clones of what backprop needs.
      if (h !== x) h.dispose();
      h = next;
    }
    return h === x ? tf.clone(x) : h;
  }
}
