import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import { checkInt, pair } from './checks.js';
import * as init from './init.js';
import { Module, type Parameter, type TensorModule } from './module.js';

/** Padding accepted by tfjs convolutions and pooling: a number, a mode, or explicit NHWC pairs. */
export type TfPadding = number | 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Options of {@link Conv2d}, PyTorch's keyword arguments. */
export interface Conv2dOptions {
  /** Stride, one number or `[sh, sw]` (default 1). */
  stride?: number | [number, number];
  /**
   * Zero padding on each side, one number or `[ph, pw]` (default 0), or 'valid' (0) or
   * 'same' (stride 1 only, extra row/column at the bottom/right as PyTorch).
   */
  padding?: number | [number, number] | 'same' | 'valid';
  /** Groups: in and out channels must both be divisible by it (default 1). */
  groups?: number;
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * Converts PyTorch padding (`[ph, pw]`) to a tfjs padding argument. Always explicit (or
 * 'valid'): tfjs 4.22 computes the output size of a *numeric* pad from the kernel height
 * and row stride for both axes, which is wrong for rectangular kernels or strides.
 */
export function toTfPadding(p: [number, number]): TfPadding {
  if (p[0] === 0 && p[1] === 0) return 'valid';
  return [
    [0, 0],
    [p[0], p[0]],
    [p[1], p[1]],
    [0, 0],
  ];
}

/**
 * 2-D convolution (PyTorch's `nn.Conv2d`, dilation 1).
 *
 * **Layouts.** Activations are **NHWC** (`[batch, height, width, channels]`), tfjs's native
 * and fastest layout on CPU; the weight keeps **PyTorch's layout `[out, in/groups, kh, kw]`**
 * so state dicts interchange with PyTorch unchanged. `forward` transposes the weight to
 * tfjs's `[kh, kw, in, out]` filter on each call (cheap next to the convolution).
 *
 * Groups: tfjs's conv2d has no groups argument, so `groups == in` runs as one depthwise
 * convolution (channel multiplier out/in) and other group counts as one convolution per
 * group on channel slices, concatenated.
 *
 * Initialisation as PyTorch: weight kaiming-uniform with a = sqrt(5), bias U(±1/sqrt(fanIn)).
 */
export class Conv2d extends Module implements TensorModule {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same';
  readonly groups: number;

  /** @throws MisconfigurationError for non-positive sizes, channels not divisible by `groups`, or 'same' with a stride. */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | [number, number],
    options: Conv2dOptions = {},
  ) {
    super();
    checkInt('inChannels', inChannels);
    checkInt('outChannels', outChannels);
    this.kernelSize = pair('kernelSize', kernelSize);
    this.stride = pair('stride', options.stride ?? 1);
    const padding = options.padding ?? 0;
    if (padding === 'same') {
      if (this.stride[0] !== 1 || this.stride[1] !== 1) {
        throw new MisconfigurationError(`\`padding\` "same" needs \`stride\` 1 (as in PyTorch), got ${showValue(options.stride)}`);
      }
      this.padding = 'same';
    } else {
      this.padding = padding === 'valid' ? [0, 0] : pair('padding', padding, 0);
    }
    this.groups = options.groups ?? 1;
    checkInt('groups', this.groups);
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new MisconfigurationError(
        `\`groups\` must divide both \`inChannels\` (${inChannels}) and \`outChannels\` (${outChannels}), got ${showValue(this.groups)}`,
      );
    }
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.weight = this.registerParameter('weight', init.defaultWeight(shape));
    this.bias = (options.bias ?? true) ? this.registerParameter('bias', init.defaultBias(outChannels, shape)) : null;
  }

  /** `x` is NHWC `[B, H, W, inChannels]`; returns `[B, H', W', outChannels]`. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels) {
      throw new Error(`Conv2d expects NHWC input [B, H, W, ${this.inChannels}], got [${x.shape.join(', ')}]`);
    }
    const pad: TfPadding = this.padding === 'same' ? 'same' : toTfPadding(this.padding);
    const [kh, kw] = this.kernelSize;
    const g = this.groups;
    return tf.tidy(() => {
      const x4 = x as tf.Tensor4D;
      const w = this.weight.variable;
      let y: tf.Tensor4D;
      if (g === 1) {
        y = tf.conv2d(x4, tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, this.stride, pad);
      } else if (g === this.inChannels) {
        // PyTorch's output channel o reads input channel o / m (m = out/in), which is tfjs's
        // depthwise order c·m + j for a filter [kh, kw, in, m].
        const m = this.outChannels / this.inChannels;
        const filter = tf.transpose(tf.reshape(w, [this.inChannels, m, kh, kw]), [2, 3, 0, 1]) as tf.Tensor4D;
        y = tf.depthwiseConv2d(x4, filter, this.stride, pad);
      } else {
        const xs = tf.split(x4, g, 3) as tf.Tensor4D[];
        const ws = tf.split(w, g, 0);
        const ys = xs.map((xi, i) => tf.conv2d(xi, tf.transpose(ws[i]!, [2, 3, 1, 0]) as tf.Tensor4D, this.stride, pad));
        y = tf.concat(ys, 3);
      }
      return this.bias ? tf.add(y, this.bias.variable) : y;
    });
  }
}
