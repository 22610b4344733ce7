/**
 * OpenAI CLIP's `ModifiedResNet` (`clip/model.py`), with OpenAI's state-dict names. It
 * differs from torchvision's ResNet in three ways (Radford et al. 2021, §2.4):
 * - a stem of three 3×3 convolutions with an average pool instead of one 7×7 conv and a max pool;
 * - anti-aliased strided convolutions: blocks with stride > 1 average-pool *before* `conv3`,
 *   and their `downsample` average-pools before its 1×1 conv;
 * - the final pooling is a QKV attention layer (`AttentionPool2d`) instead of a mean.
 *
 * Activations are **NHWC** (lightclip's image layout); weights keep PyTorch's layouts.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { batchNormTrain, nativeActive } from '../../core/native/fused.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Identity, init, Linear, Module, ReLU, Sequential, type Parameter, type TensorModule } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';

/** Output channels of a bottleneck block are `planes · EXPANSION` (torchvision's `Bottleneck.expansion`). */
const EXPANSION = 4;

/**
 * `bn.forward(x)`, through the fused native batch norm (core/native/fused.ts) in training
 * mode on lightclip-cpu: one kernel each way instead of about ten tf ops whose full-size
 * intermediates stay alive until backprop (measured on a CLIP RN50 batch-8 step: the
 * composed BatchNorms took about a fifth of the step). The running statistics are updated as
 * core/nn's BatchNormBase does it (momentum, or the cumulative average when null; unbiased
 * variance), so both paths leave the same state. Eval mode and other backends: `bn.forward`.
 */
export function applyBatchNorm(bn: BatchNorm2d, x: Tensor): Tensor {
  const { weight, bias } = bn;
  const n = x.rank === 4 ? x.size / bn.numFeatures : 0;
  // anything unusual (including the n <= 1 error) is left to BatchNorm2d itself
  if (!bn.training || !weight || !bias || !nativeActive() || x.rank !== 4 || x.shape[3] !== bn.numFeatures || n <= 1) {
    return bn.forward(x);
  }
  return tf.tidy(() => {
    const { y, mean, variance } = batchNormTrain(x, weight.variable, bias.variable, bn.eps);
    const rm = bn.runningMean;
    const rv = bn.runningVar;
    const nbt = bn.numBatchesTracked;
    if (rm && rv && nbt) {
      const count = tf.add(nbt, tf.scalar(1, 'int32'));
      nbt.assign(count);
      const m: Tensor | number = bn.momentum ?? tf.div(1, tf.cast(count, 'float32'));
      const keep = typeof m === 'number' ? 1 - m : tf.sub(1, m);
      // `assign` is not taped: no gradient reaches the running statistics
      rm.assign(tf.add(tf.mul(rm, keep), tf.mul(mean, m)));
      rv.assign(tf.add(tf.mul(rv, keep), tf.mul(tf.mul(variance, n / (n - 1)), m)));
    }
    return y;
  });
}

/** `chain.forward(x)` with every BatchNorm2d in it going through {@link applyBatchNorm}. */
function forwardChain(chain: Iterable<TensorModule>, x: Tensor): Tensor {
  return tf.tidy(() => {
    let h = x;
    for (const m of chain) h = m instanceof BatchNorm2d ? applyBatchNorm(m, h) : m.forward(h);
    return h;
  });
}

/**
 * OpenAI's bottleneck: `conv1` 1×1 → `bn1` → relu, `conv2` 3×3 (pad 1) → `bn2` → relu,
 * `avgpool(stride)` (identity at stride 1), `conv3` 1×1 → `bn3`, plus the shortcut, then relu.
 * All convolutions are bias-free. When the stride or the width changes, the shortcut is
 * `downsample` = `-1`: AvgPool(stride), `0`: 1×1 conv, `1`: BatchNorm (OpenAI's
 * `OrderedDict`, hence the keys `downsample.0.weight` and `downsample.1.*`).
 */
export class Bottleneck extends Module implements TensorModule {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly avgpool: TensorModule;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(
    readonly inplanes: number,
    readonly planes: number,
    readonly stride = 1,
  ) {
    super();
    const out = planes * EXPANSION;
    this.conv1 = this.registerModule('conv1', new Conv2d(inplanes, planes, 1, { bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.registerModule('relu1', new ReLU());
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.registerModule('relu2', new ReLU());
    // OpenAI uses nn.Identity here at stride 1; an AvgPool2d(1) would be the same but cost a copy.
    this.avgpool = this.registerModule('avgpool', stride > 1 ? new AvgPool2d(stride) : new Identity());
    this.conv3 = this.registerModule('conv3', new Conv2d(planes, out, 1, { bias: false }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(out));
    this.registerModule('relu3', new ReLU());
    this.downsample = null;
    if (stride > 1 || inplanes !== out) {
      this.downsample = this.registerModule('downsample', new Sequential([
        ['-1', stride > 1 ? new AvgPool2d(stride) : new Identity()],
        ['0', new Conv2d(inplanes, out, 1, { bias: false })],
        ['1', new BatchNorm2d(out)],
      ]));
    }
  }

  /** `x` NHWC `[B, H, W, inplanes]` → `[B, H/stride, W/stride, planes·4]`. */
  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = tf.relu(applyBatchNorm(this.bn1, this.conv1.forward(x)));
      h = tf.relu(applyBatchNorm(this.bn2, this.conv2.forward(h)));
      h = applyBatchNorm(this.bn3, this.conv3.forward(this.avgpool.forward(h)));
      const identity = this.downsample ? forwardChain(this.downsample, x) : x;
      return tf.relu(tf.add(h, identity));
    });
  }
}

/**
 * OpenAI's attention pooling: the feature map `[B, H, W, C]` becomes `HW` tokens with their
 * mean prepended, plus `positional_embedding [HW + 1, C]`; one multi-head attention step
 * with the mean token as the only query (separate `q_proj`, `k_proj`, `v_proj`, then
 * `c_proj` to `outputDim`) gives the image feature `[B, outputDim]`.
 */
export class AttentionPool2d extends Module {
  readonly positionalEmbedding: Parameter;
  readonly kProj: Linear;
  readonly qProj: Linear;
  readonly vProj: Linear;
  readonly cProj: Linear;
  readonly headDim: number;

  /** @throws MisconfigurationError when `numHeads` does not divide `embedDim`. */
  constructor(
    readonly spacialDim: number,
    readonly embedDim: number,
    readonly numHeads: number,
    outputDim: number = embedDim,
  ) {
    super();
    if (!(Number.isInteger(numHeads) && numHeads > 0 && embedDim % numHeads === 0)) {
      throw new MisconfigurationError(`AttentionPool2d: \`numHeads\` must divide \`embedDim\` (${embedDim}), got ${showValue(numHeads)}`);
    }
    this.headDim = embedDim / numHeads;
    // OpenAI: randn(spacial² + 1, embed) / sqrt(embed).
    this.positionalEmbedding = this.registerParameter(
      'positional_embedding',
      init.normal([spacialDim * spacialDim + 1, embedDim], { std: embedDim ** -0.5 }),
    );
    this.kProj = this.registerModule('k_proj', new Linear(embedDim, embedDim));
    this.qProj = this.registerModule('q_proj', new Linear(embedDim, embedDim));
    this.vProj = this.registerModule('v_proj', new Linear(embedDim, embedDim));
    this.cProj = this.registerModule('c_proj', new Linear(embedDim, outputDim));
  }

  /** `x` NHWC `[B, spacialDim, spacialDim, embedDim]` → `[B, outputDim]`. */
  forward(x: Tensor): Tensor {
    const s = this.spacialDim;
    const c = this.embedDim;
    if (x.rank !== 4 || x.shape[1] !== s || x.shape[2] !== s || x.shape[3] !== c) {
      throw new Error(`AttentionPool2d expects NHWC [B, ${s}, ${s}, ${c}], got [${x.shape.join(', ')}]`);
    }
    const b = x.shape[0]!;
    const n = s * s + 1;
    const h = this.numHeads;
    const d = this.headDim;
    return tf.tidy(() => {
      const flat = tf.reshape(x, [b, s * s, c]);
      const tokens = tf.add(tf.concat([tf.mean(flat, 1, true), flat], 1), this.positionalEmbedding.variable);
      // Only the mean token queries; scale q by d^-0.5 before the product, as PyTorch's
      // multi_head_attention_forward.
      const q = tf.reshape(tf.mul(this.qProj.forward(tf.slice(tokens, [0, 0, 0], [b, 1, c])), d ** -0.5), [b, h, 1, d]);
      const heads = (t: Tensor): Tensor => tf.transpose(tf.reshape(t, [b, n, h, d]), [0, 2, 1, 3]);
      const probs = tf.softmax(tf.matMul(q, heads(this.kProj.forward(tokens)), false, true)); // [B, H, 1, N]
      // [B, H, 1, d] → [B, H·d] is a plain reshape: the head axis already precedes d.
      const ctx = tf.reshape(tf.matMul(probs, heads(this.vProj.forward(tokens))), [b, c]);
      return this.cProj.forward(ctx);
    });
  }
}

/** Shape of a {@link ModifiedResNet}. */
export interface ModifiedResNetOptions {
  /** Bottleneck blocks in each of the four stages. */
  layers: readonly [number, number, number, number];
  /** Width of the stem output; stage k has `width·2^k` planes and `width·2^k·4` channels out. */
  width: number;
  /** Heads of the attention pool (OpenAI: `width·32/64`). */
  heads: number;
  /** Square input resolution, a multiple of 32. */
  imageSize: number;
  /** Width of the joint embedding (`attnpool.c_proj` output). */
  outputDim: number;
}

/**
 * The ResNet image tower: stem (`conv1`/`bn1`/`relu1` stride 2, `conv2`/`bn2`/`relu2`,
 * `conv3`/`bn3`/`relu3`, `avgpool` 2), `layer1`..`layer4` of {@link Bottleneck}s (strides 1,
 * 2, 2, 2) and `attnpool`. Input NHWC `[B, imageSize, imageSize, 3]`, output `[B, outputDim]`.
 * The image shrinks by 32 (five halvings), so the attention pool sees `(imageSize/32)²` tokens.
 */
export class ModifiedResNet extends Module {
  readonly stem: Sequential;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly attnpool: AttentionPool2d;
  readonly imageSize: number;
  private inplanes: number;

  /** @throws MisconfigurationError when `imageSize` is not a multiple of 32 or `width` is odd. */
  constructor(options: ModifiedResNetOptions) {
    super();
    const { layers, width, heads, imageSize, outputDim } = options;
    if (!(Number.isInteger(imageSize) && imageSize > 0 && imageSize % 32 === 0)) {
      throw new MisconfigurationError(`\`imageSize\` must be a positive multiple of 32 for a ModifiedResNet, got ${showValue(imageSize)}`);
    }
    if (!(Number.isInteger(width) && width > 0 && width % 2 === 0)) {
      throw new MisconfigurationError(`\`width\` must be a positive even integer for a ModifiedResNet (the stem starts at width/2), got ${showValue(width)}`);
    }
    this.imageSize = imageSize;
    const half = width / 2;
    // The stem's modules sit at the root (`conv1`, `bn1`, ...) as in OpenAI; `stem` chains
    // the same objects without registering them a second time.
    const stemModules: TensorModule[] = [
      this.registerModule('conv1', new Conv2d(3, half, 3, { stride: 2, padding: 1, bias: false })),
      this.registerModule('bn1', new BatchNorm2d(half)),
      this.registerModule('relu1', new ReLU()),
      this.registerModule('conv2', new Conv2d(half, half, 3, { padding: 1, bias: false })),
      this.registerModule('bn2', new BatchNorm2d(half)),
      this.registerModule('relu2', new ReLU()),
      this.registerModule('conv3', new Conv2d(half, width, 3, { padding: 1, bias: false })),
      this.registerModule('bn3', new BatchNorm2d(width)),
      this.registerModule('relu3', new ReLU()),
      this.registerModule('avgpool', new AvgPool2d(2)),
    ];
    this.stem = new Sequential(...stemModules);
    this.inplanes = width;
    this.layer1 = this.registerModule('layer1', this.makeLayer(width, layers[0], 1));
    this.layer2 = this.registerModule('layer2', this.makeLayer(width * 2, layers[1], 2));
    this.layer3 = this.registerModule('layer3', this.makeLayer(width * 4, layers[2], 2));
    this.layer4 = this.registerModule('layer4', this.makeLayer(width * 8, layers[3], 2));
    const embedDim = width * 32;
    this.attnpool = this.registerModule('attnpool', new AttentionPool2d(imageSize / 32, embedDim, heads, outputDim));
  }

  private makeLayer(planes: number, blocks: number, stride: number): Sequential {
    const layer = new Sequential(new Bottleneck(this.inplanes, planes, stride));
    this.inplanes = planes * EXPANSION;
    for (let i = 1; i < blocks; i++) layer.append(new Bottleneck(this.inplanes, planes));
    return layer;
  }

  /** Every bottleneck block, stage by stage. */
  blocks(): Bottleneck[] {
    return [this.layer1, this.layer2, this.layer3, this.layer4].flatMap((layer) => [...layer] as Bottleneck[]);
  }

  /** `images` NHWC `[B, imageSize, imageSize, 3]` → features `[B, outputDim]`. */
  forward(images: Tensor): Tensor {
    const s = this.imageSize;
    if (images.rank !== 4 || images.shape[1] !== s || images.shape[2] !== s || images.shape[3] !== 3) {
      throw new Error(`ModifiedResNet expects NHWC images [B, ${s}, ${s}, 3], got [${images.shape.join(', ')}]`);
    }
    let x = forwardChain(this.stem, images);
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      const next = layer.forward(x);
      x.dispose();
      x = next;
    }
    const out = this.attnpool.forward(x);
    x.dispose();
    return out;
  }
}
