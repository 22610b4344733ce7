/**
 * CoreNet's CLIP and CatLIP towers (corenet `vit`, `transformer` text encoder), built with
 * CoreNet's own parameter names so that a CoreNet `.pt` state dict loads one-to-one
 * (shared/research/corenet.md §2–§4):
 *
 * - image: conv stem `patch_emb.{0,1,2}` (k4 s4 **pad 1** + BN + GELU, k2 s2 + BN + GELU,
 *   k2 s2 with bias), `cls_token` (no position), `pos_embed.pos_embed.pos_embed [1,1,196,D]`
 *   resampled 1-D to other token counts, pre-norm blocks `transformer.i.pre_norm_mha.{0,1}` /
 *   `pre_norm_ffn.{0,1,4}` (LayerNorm eps 1e-6, exact GELU), `post_transformer_norm`, then
 *   `classifier.proj [D, E]` (CLIP) or `classifier.{weight,bias}` (CatLIP). Input RGB in [0, 1].
 * - text: `embedding_layer`, `positional_embedding.pos_embed.pos_embed [1,1,77,W]`, causal
 *   blocks (eps 1e-5), `final_layer_norm`, pooled at the arg-max token id (EOT),
 *   `projection_layer [W, E]`.
 * - CatLIP's flash-attention build names the output projection `out_proj_attn`; both names load.
 * - `neural_augmentor.*` (RangeAugment's six scalars) are kept for strict loading; unused here.
 */
import { BatchNorm2d, Conv2d, Embedding, F, Identity, init, LayerNorm, Linear, Module, ModuleList, type Parameter, type StateDict } from '../../core/nn/index.js';
import { MisconfigurationError } from '../../core/errors.js';
import { tf, type Tensor } from '../../core/tf.js';
import { resizePosEmbed1d } from '../clip/posEmbed.js';

/** A module whose only child sits under `name` (CoreNet's `.block.`, `.pos_embed.` levels). */
class Holder<M extends Module = Module> extends Module {
  readonly child: M;
  constructor(name: string, child: M) {
    super();
    this.child = this.registerModule(name, child);
  }
}

class ConvLayer extends Module {
  readonly conv: Conv2d;
  readonly norm: BatchNorm2d | null;
  constructor(cin: number, cout: number, k: number, stride: number, padding: number, options: { bias: boolean; normAct: boolean }) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(cin, cout, k, { stride, padding, bias: options.bias }));
    this.norm = options.normAct ? this.registerModule('norm', new BatchNorm2d(cout)) : null;
  }
  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const y = this.conv.forward(x);
      return this.norm ? F.gelu(this.norm.forward(y)) : y;
    });
  }
}

class CorenetAttention extends Module {
  readonly qkv: Linear;
  readonly out: Linear;
  constructor(readonly dim: number, readonly heads: number, flashNames: boolean) {
    super();
    this.qkv = this.registerModule('qkv_proj', new Linear(dim, 3 * dim));
    this.out = this.registerModule(flashNames ? 'out_proj_attn' : 'out_proj', new Linear(dim, dim));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const [b, l, d] = x.shape as [number, number, number];
    const h = this.heads;
    const hd = d / h;
    return tf.tidy(() => {
      const qkv = tf.transpose(tf.reshape(this.qkv.forward(x), [b, l, 3, h, hd]), [2, 0, 3, 1, 4]); // [3, B, H, L, hd]
      const [q, k, v] = tf.unstack(qkv, 0) as [Tensor, Tensor, Tensor];
      let att = tf.mul(tf.matMul(q, k, false, true), hd ** -0.5);
      if (mask) att = tf.add(att, mask);
      const o = tf.matMul(tf.softmax(att, -1), v); // [B, H, L, hd]
      return this.out.forward(tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, l, d]));
    });
  }
}

class CorenetBlock extends Module {
  readonly mha: ModuleList<Module>;
  readonly ffn: ModuleList<Module>;
  constructor(dim: number, heads: number, ffnDim: number, eps: number, flashNames: boolean) {
    super();
    this.mha = this.registerModule('pre_norm_mha', new ModuleList<Module>([new LayerNorm(dim, { eps }), new CorenetAttention(dim, heads, flashNames)]));
    this.ffn = this.registerModule('pre_norm_ffn', new ModuleList<Module>([new LayerNorm(dim, { eps }), new Linear(dim, ffnDim), new Identity(), new Identity(), new Linear(ffnDim, dim)]));
  }
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const m = [...this.mha] as [LayerNorm, CorenetAttention];
    const f = [...this.ffn] as [LayerNorm, Linear, Identity, Identity, Linear];
    return tf.tidy(() => {
      const y = tf.add(x, m[1].forward(m[0].forward(x), mask));
      return tf.add(y, f[4].forward(F.gelu(f[1].forward(f[0].forward(y)))));
    });
  }
}

class RangeAugmentScalars extends Module {
  constructor() {
    super();
    for (const [op, lo, hi] of [['brightness', 0.5, 1.5], ['contrast', 0.5, 1.5], ['noise', 0, 0.1]] as const) {
      const m = new (class extends Module {
        constructor() {
          super();
          this.registerParameter('_low', tf.scalar(lo), false);
          this.registerParameter('_high', tf.scalar(hi), false);
        }
      })();
      this.registerModule(op, m);
    }
  }
}

export interface CorenetVitOptions {
  width: number;
  layers: number;
  heads: number;
  ffnDim: number;
  /** Tokens of the positional table (196: built for 224 px at stride 16, in every config). */
  posTokens?: number;
  /** `out_proj_attn` (CatLIP, flash attention) instead of `out_proj`. */
  flashNames?: boolean;
  /** CLIP: projection width (`classifier.proj`); CatLIP: classes (`classifier` Linear). */
  head: { kind: 'proj'; dim: number } | { kind: 'linear'; classes: number };
  rangeAugment?: boolean;
}

export class CorenetVit extends Module {
  readonly patchEmb: ModuleList<Holder<ConvLayer>>;
  readonly clsToken: Parameter;
  readonly posEmbed: Parameter;
  readonly blocks: ModuleList<CorenetBlock>;
  readonly postNorm: LayerNorm;
  readonly proj: Parameter | null = null;
  readonly classifier: Linear | null = null;

  constructor(readonly options: CorenetVitOptions) {
    super();
    const { width: d, layers, heads, ffnDim } = options;
    if (d % 4 !== 0 || d % heads !== 0) throw new MisconfigurationError(`CoreNet ViT: width ${d} must be divisible by 4 and by heads ${heads}`);
    const c = d / 4;
    const stem = [
      new ConvLayer(3, c, 4, 4, 1, { bias: false, normAct: true }),
      new ConvLayer(c, c, 2, 2, 0, { bias: false, normAct: true }),
      new ConvLayer(c, d, 2, 2, 0, { bias: true, normAct: false }),
    ];
    this.patchEmb = this.registerModule('patch_emb', new ModuleList(stem.map((s) => new Holder('block', s))));
    this.clsToken = this.registerParameter('cls_token', init.truncNormal([1, 1, d], { std: 0.02 }));
    const inner = new (class extends Module {
      readonly p: Parameter;
      constructor() {
        super();
        this.p = this.registerParameter('pos_embed', init.truncNormal([1, 1, options.posTokens ?? 196, d], { std: 0.02 }));
      }
    })();
    this.posEmbed = inner.p;
    this.registerModule('pos_embed', new Holder('pos_embed', inner));
    this.blocks = this.registerModule('transformer', new ModuleList(Array.from({ length: layers }, () => new CorenetBlock(d, heads, ffnDim, 1e-6, options.flashNames ?? false))));
    this.postNorm = this.registerModule('post_transformer_norm', new LayerNorm(d, { eps: 1e-6 }));
    if (options.head.kind === 'proj') {
      const holder = new (class extends Module {
        readonly p: Parameter;
        constructor(dim: number) {
          super();
          this.p = this.registerParameter('proj', init.normal([d, dim], { std: d ** -0.5 }));
        }
      })(options.head.dim);
      this.registerModule('classifier', holder);
      this.proj = holder.p;
    } else {
      this.classifier = this.registerModule('classifier', new Linear(d, options.head.classes));
    }
    if (options.rangeAugment ?? true) this.registerModule('neural_augmentor', new RangeAugmentScalars());
  }

  /** NHWC images in [0, 1] → CLS features after the post norm `[B, D]`. */
  features(images: Tensor): Tensor {
    const d = this.options.width;
    return tf.tidy(() => {
      let x = images;
      for (const h of this.patchEmb) x = h.child.forward(x);
      const [b, gh, gw] = x.shape as [number, number, number, number];
      const n = gh * gw;
      let tokens: Tensor = tf.reshape(x, [b, n, d]);
      const table = tf.reshape(this.posEmbed.variable, [-1, d]);
      tokens = tf.add(tokens, table.shape[0] === n ? table : resizePosEmbed1d(table, n));
      tokens = tf.concat([tf.broadcastTo(this.clsToken.variable, [b, 1, d]), tokens], 1);
      for (const blk of this.blocks) tokens = blk.forward(tokens, null);
      return this.postNorm.forward(tf.reshape(tf.slice(tokens, [0, 0, 0], [b, 1, d]), [b, d]));
    });
  }

  /** CLIP: `features @ proj`; CatLIP: classifier logits. */
  forward(images: Tensor): Tensor {
    return tf.tidy(() => {
      const f = this.features(images);
      return this.proj ? tf.matMul(f, this.proj.variable) : this.classifier!.forward(f);
    });
  }
}

export interface CorenetTextOptions {
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  ffnDim: number;
  contextLength: number;
  projDim: number;
}

export class CorenetTextEncoder extends Module {
  readonly embedding: Embedding;
  readonly pos: Parameter;
  readonly blocks: ModuleList<CorenetBlock>;
  readonly finalNorm: LayerNorm;
  readonly projection: Parameter;
  constructor(readonly options: CorenetTextOptions) {
    super();
    const { vocabSize, width: w, layers, heads, ffnDim, contextLength, projDim } = options;
    this.embedding = this.registerModule('embedding_layer', new Embedding(vocabSize, w));
    const inner = new (class extends Module {
      readonly p: Parameter;
      constructor() {
        super();
        this.p = this.registerParameter('pos_embed', init.truncNormal([1, 1, contextLength, w], { std: 0.02 }));
      }
    })();
    this.pos = inner.p;
    this.registerModule('positional_embedding', new Holder('pos_embed', inner));
    this.blocks = this.registerModule('transformer', new ModuleList(Array.from({ length: layers }, () => new CorenetBlock(w, heads, ffnDim, 1e-5, false))));
    this.finalNorm = this.registerModule('final_layer_norm', new LayerNorm(w, { eps: 1e-5 }));
    this.projection = this.registerParameter('projection_layer', init.normal([w, projDim], { std: w ** -0.5 }));
  }

  /** Token ids `[B, L]` (int32) → projected EOT features `[B, E]` (unnormalised). */
  forward(tokens: Tensor): Tensor {
    const [b, l] = tokens.shape as [number, number];
    const w = this.options.width;
    return tf.tidy(() => {
      let table = tf.reshape(this.pos.variable, [-1, w]);
      if (table.shape[0] !== l) table = resizePosEmbed1d(table, l);
      let x: Tensor = tf.add(this.embedding.forward(tokens), table);
      const mask = tf.tensor2d(causalMask(l), [l, l]);
      for (const blk of this.blocks) x = blk.forward(x, mask);
      x = this.finalNorm.forward(x);
      const eot = tf.argMax(tokens, 1);
      const pooled = tf.gatherND(x, tf.stack([tf.range(0, b, 1, 'int32'), tf.cast(eot, 'int32')], 1));
      return tf.matMul(pooled, this.projection.variable);
    });
  }
}

function causalMask(l: number): Float32Array {
  const m = new Float32Array(l * l);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < l; j++) m[i * l + j] = -1e9;
  return m;
}

/** CoreNet's CLIP: `image_encoder.*`, `text_encoder.*`, `logit_scale`. */
export class CorenetClip extends Module {
  readonly imageEncoder: CorenetVit;
  readonly textEncoder: CorenetTextEncoder;
  readonly logitScale: Parameter;
  constructor(image: CorenetVitOptions, text: CorenetTextOptions) {
    super();
    this.imageEncoder = this.registerModule('image_encoder', new CorenetVit(image));
    this.textEncoder = this.registerModule('text_encoder', new CorenetTextEncoder(text));
    this.logitScale = this.registerParameter('logit_scale', tf.scalar(Math.log(1 / 0.07)));
  }
  encodeImage(images: Tensor): Tensor {
    return this.imageEncoder.forward(images);
  }
  encodeText(tokens: Tensor): Tensor {
    return this.textEncoder.forward(tokens);
  }
}

/** CoreNet's published configurations (projects/clip/clip_vit_base.yaml, projects/catlip/pretraining/vit_base.yaml). */
export const CORENET_MODELS = {
  'corenet/clip_vit_base': () =>
    new CorenetClip(
      { width: 768, layers: 12, heads: 12, ffnDim: 3072, head: { kind: 'proj', dim: 512 } },
      { vocabSize: 49408, width: 512, layers: 12, heads: 8, ffnDim: 2048, contextLength: 77, projDim: 512 },
    ),
  'corenet/catlip_vit_base': (classes = 24320) => new CorenetVit({ width: 768, layers: 12, heads: 12, ffnDim: 3072, flashNames: true, head: { kind: 'linear', classes } }),
} as const;

/**
 * Loads a CoreNet state dict (a `.pt` read with the restricted unpickler) into a CoreNet
 * module: `out_proj` and `out_proj_attn` are accepted for one another; strict otherwise,
 * except `exclude` prefixes (CoreNet `resume_exclude_scopes`, e.g. `classifier.` for transfer).
 */
export function loadCorenetStateDict(model: Module, sd: StateDict, options: { exclude?: readonly string[] } = {}): void {
  const own = new Set(Object.keys(model.stateDict()));
  const renamed: StateDict = {};
  for (const [k, t] of Object.entries(sd)) {
    if (options.exclude?.some((p) => k.startsWith(p))) continue;
    let name = k;
    if (!own.has(name)) {
      const alt = name.includes('.out_proj_attn.') ? name.replace('.out_proj_attn.', '.out_proj.') : name.replace('.out_proj.', '.out_proj_attn.');
      if (own.has(alt)) name = alt;
    }
    renamed[name] = t;
  }
  const excluded = [...own].filter((k) => options.exclude?.some((p) => k.startsWith(p)));
  const res = model.loadStateDict(renamed, { strict: false });
  const missing = res.missingKeys.filter((k) => !excluded.includes(k));
  if (missing.length || res.unexpectedKeys.length) {
    throw new MisconfigurationError(
      `CoreNet checkpoint does not match the model: ${missing.length} missing (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}), ` +
        `${res.unexpectedKeys.length} unexpected (${res.unexpectedKeys.slice(0, 5).join(', ')}${res.unexpectedKeys.length > 5 ? ', …' : ''}).`,
    );
  }
}
