/**
 * torchvision's ResNet (He et al. 2016, "v1.5": the stride sits on the 3×3 conv of a
 * bottleneck) with torchvision's exact state-dict names, so `resnet50(pretrained=True)`
 * weights load with every key matched:
 *
 * `conv1.weight`, `bn1.{weight,bias,running_mean,running_var,num_batches_tracked}`,
 * `layerK.M.{conv1,bn1,conv2,bn2,conv3,bn3}`, `layerK.0.downsample.{0,1}`, `fc.{weight,bias}`.
 *
 * Activations are NHWC (lightclip's image layout); conv weights keep PyTorch's
 * `[out, in, kh, kw]`. This is the image encoder train-CLIP's `CustomCLIPWrapper` example
 * uses (`resnet50(pretrained=True)` with `fc` replaced by `Linear(2048, 768)`), not OpenAI
 * CLIP's ModifiedResNet (three-conv stem, attention pooling), which has other names.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { BatchNorm2d, Conv2d, init, Linear, Module, Sequential, type TensorModule } from '../../core/nn/index.js';
import { tf, type Tensor } from '../../core/tf.js';

/** The block type of a ResNet: two 3×3 convs (ResNet-18/34) or 1×1-3×3-1×1 (ResNet-50+). */
export type ResNetBlock = 'basic' | 'bottleneck';

/** Options of {@link ResNet}. */
export interface ResNetOptions {
  /** Block type (default 'bottleneck'). */
  block?: ResNetBlock;
  /** Blocks per stage (default [3, 4, 6, 3], ResNet-50). */
  layers?: readonly [number, number, number, number];
  /**
   * Classes of the `fc` head (default 1000, ImageNet). 0 drops `fc`: `forward` then returns
   * the pooled features (2048-d for ResNet-50), the feature extractor CLIP fine-tuning wants.
   */
  numClasses?: number;
  /** Channels of the stem and first stage (default 64); smaller values give narrow test models. */
  width?: number;
  /** Zero-initialise the last BN of each block, so every block starts as the identity (torchvision's `zero_init_residual`). */
  zeroInitResidual?: boolean;
}

/** torchvision's conv init: kaiming-normal, fan-out, for ReLU. */
function conv(inC: number, outC: number, k: number, stride = 1, padding = 0): Conv2d {
  const c = new Conv2d(inC, outC, k, { stride, padding, bias: false });
  init.assignInit(c.weight, (s) => init.kaimingNormal(s, { mode: 'fanOut', nonlinearity: 'relu' }));
  return c;
}

/** A residual block: the shared interface of {@link BasicBlock} and {@link Bottleneck}. */
interface ResidualBlock extends TensorModule {
  /** The BN whose scale `zeroInitResidual` zeroes. */
  readonly lastBn: BatchNorm2d;
}

/** ResNet-18/34 block: 3×3 → 3×3, expansion 1. */
export class BasicBlock extends Module implements ResidualBlock {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 3, stride, 1));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1, 1));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  get lastBn(): BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const out = this.bn2.forward(this.conv2.forward(tf.relu(this.bn1.forward(this.conv1.forward(x)))));
      return tf.relu(tf.add(out, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** ResNet-50+ block: 1×1 reduce → 3×3 (stride here, torchvision's v1.5) → 1×1 expand ×4. */
export class Bottleneck extends Module implements ResidualBlock {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 1));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride, 1));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, planes * Bottleneck.expansion, 1));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * Bottleneck.expansion));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  get lastBn(): BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      let out = tf.relu(this.bn1.forward(this.conv1.forward(x)));
      out = tf.relu(this.bn2.forward(this.conv2.forward(out)));
      out = this.bn3.forward(this.conv3.forward(out));
      return tf.relu(tf.add(out, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/**
 * 3×3 max pooling, stride 2, padding 1, over NHWC (torchvision's stem pool). Padded cells
 * are -Infinity, as PyTorch pads max pooling, so they never win.
 */
function stemMaxPool(x: Tensor): Tensor {
  return tf.tidy(() => {
    const padded = tf.pad(
      x,
      [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      -Infinity,
    ) as tf.Tensor4D;
    return tf.maxPool(padded, 3, 2, 'valid');
  });
}

/**
 * torchvision's ResNet. Input NHWC `[B, H, W, 3]` (normalised with ImageNet or CLIP
 * statistics); `forward` returns logits `[B, numClasses]`, or pooled features
 * `[B, width·8·expansion]` when `numClasses` is 0.
 *
 * @example
 * const encoder = resnet50({ numClasses: 0 });            // 2048-d features
 * const head = new Linear(2048, 768);                      // train-CLIP's replaced fc
 */
export class ResNet extends Module implements TensorModule {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly fc: Linear | null;
  /** Width of the pooled features (2048 for ResNet-50, 512 for ResNet-18). */
  readonly numFeatures: number;
  readonly block: ResNetBlock;
  readonly layers: readonly [number, number, number, number];

  /** @throws MisconfigurationError for non-positive stage depths, width or a negative `numClasses`. */
  constructor(options: ResNetOptions = {}) {
    super();
    this.block = options.block ?? 'bottleneck';
    if (this.block !== 'basic' && this.block !== 'bottleneck') {
      throw new MisconfigurationError(`\`block\` must be "basic" or "bottleneck", got ${showValue(this.block)}`);
    }
    this.layers = options.layers ?? [3, 4, 6, 3];
    if (this.layers.length !== 4 || !this.layers.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new MisconfigurationError(`\`layers\` must be four positive integers, got ${showValue(this.layers)}`);
    }
    const width = options.width ?? 64;
    if (!Number.isInteger(width) || width < 1) throw new MisconfigurationError(`\`width\` must be a positive integer, got ${showValue(width)}`);
    const numClasses = options.numClasses ?? 1000;
    if (!Number.isInteger(numClasses) || numClasses < 0) {
      throw new MisconfigurationError(`\`numClasses\` must be an integer >= 0 (0 drops \`fc\`), got ${showValue(numClasses)}`);
    }
    const expansion = this.block === 'bottleneck' ? Bottleneck.expansion : BasicBlock.expansion;
    this.conv1 = this.registerModule('conv1', conv(3, width, 7, 2, 3));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    let inplanes = width;
    const stage = (planes: number, blocks: number, stride: number): Sequential => {
      const seq = new Sequential();
      for (let i = 0; i < blocks; i++) {
        const s = i === 0 ? stride : 1;
        const needsDown = i === 0 && (s !== 1 || inplanes !== planes * expansion);
        const down = needsDown ? new Sequential(conv(inplanes, planes * expansion, 1, s), new BatchNorm2d(planes * expansion)) : null;
        const b = this.block === 'bottleneck' ? new Bottleneck(inplanes, planes, s, down) : new BasicBlock(inplanes, planes, s, down);
        if (options.zeroInitResidual) init.assignInit(b.lastBn.weight!, init.zeros);
        seq.append(b);
        inplanes = planes * expansion;
      }
      return seq;
    };
    this.layer1 = this.registerModule('layer1', stage(width, this.layers[0], 1));
    this.layer2 = this.registerModule('layer2', stage(width * 2, this.layers[1], 2));
    this.layer3 = this.registerModule('layer3', stage(width * 4, this.layers[2], 2));
    this.layer4 = this.registerModule('layer4', stage(width * 8, this.layers[3], 2));
    this.numFeatures = inplanes;
    this.fc = numClasses > 0 ? this.registerModule('fc', new Linear(inplanes, numClasses)) : null;
  }

  /** The pooled features `[B, numFeatures]` (everything but `fc`). */
  forwardFeatures(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[3] !== 3) throw new Error(`ResNet expects NHWC images [B, H, W, 3], got [${x.shape.join(', ')}]`);
    return tf.tidy(() => {
      let h = stemMaxPool(tf.relu(this.bn1.forward(this.conv1.forward(x))));
      h = this.layer4.forward(this.layer3.forward(this.layer2.forward(this.layer1.forward(h))));
      return tf.mean(h, [1, 2]);
    });
  }

  /** Logits `[B, numClasses]`, or the pooled features when there is no `fc`. */
  forward(x: Tensor): Tensor {
    if (!this.fc) return this.forwardFeatures(x);
    return tf.tidy(() => this.fc!.forward(this.forwardFeatures(x)));
  }
}

/** ResNet-18 (basic blocks [2, 2, 2, 2], 512-d features). */
export function resnet18(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'basic', layers: [2, 2, 2, 2] });
}

/** ResNet-34 (basic blocks [3, 4, 6, 3], 512-d features). */
export function resnet34(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'basic', layers: [3, 4, 6, 3] });
}

/** ResNet-50 (bottlenecks [3, 4, 6, 3], 2048-d features, 25,557,032 parameters with fc). */
export function resnet50(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'bottleneck', layers: [3, 4, 6, 3] });
}

/** ResNet-101 (bottlenecks [3, 4, 23, 3]). */
export function resnet101(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'bottleneck', layers: [3, 4, 23, 3] });
}

/** ResNet-152 (bottlenecks [3, 8, 36, 3]). */
export function resnet152(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'bottleneck', layers: [3, 8, 36, 3] });
}
