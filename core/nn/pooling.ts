import { tf, type Tensor } from '../tf.js';
import { pair } from './checks.js';
import { toTfPadding } from './conv.js';
import { Module, type TensorModule } from './module.js';

/** Options of {@link AvgPool2d}. */
export interface AvgPool2dOptions {
  /** Stride, default the kernel size (as PyTorch). */
  stride?: number | [number, number];
  /** Zero padding on each side (default 0). */
  padding?: number | [number, number];
  /** Count padded zeros in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
}

/**
 * Average pooling over NHWC images `[B, H, W, C]` (PyTorch's `nn.AvgPool2d`, floor mode).
 * tfjs's avgPool divides by the number of in-bounds pixels, which is PyTorch's
 * `count_include_pad=False`; the default `true` zero-pads explicitly first.
 */
export class AvgPool2d extends Module implements TensorModule {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly countIncludePad: boolean;

  /** @throws MisconfigurationError for non-positive sizes or negative padding. */
  constructor(kernelSize: number | [number, number], options: AvgPool2dOptions = {}) {
    super();
    this.kernelSize = pair('kernelSize', kernelSize);
    this.stride = pair('stride', options.stride ?? this.kernelSize);
    this.padding = pair('padding', options.padding ?? 0, 0);
    this.countIncludePad = options.countIncludePad ?? true;
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new Error(`AvgPool2d expects NHWC input [B, H, W, C], got [${x.shape.join(', ')}]`);
    const [ph, pw] = this.padding;
    return tf.tidy(() => {
      if (this.countIncludePad && (ph > 0 || pw > 0)) {
        const padded = tf.pad(x, [
          [0, 0],
          [ph, ph],
          [pw, pw],
          [0, 0],
        ]) as tf.Tensor4D;
        return tf.avgPool(padded, this.kernelSize, this.stride, 'valid');
      }
      return tf.avgPool(x as tf.Tensor4D, this.kernelSize, this.stride, toTfPadding(this.padding));
    });
  }
}

/**
 * Average pooling to a fixed output size over NHWC images (PyTorch's
 * `nn.AdaptiveAvgPool2d`): output cell i covers rows `floor(i·H/oh) .. ceil((i+1)·H/oh)`,
 * and likewise for columns.
 */
export class AdaptiveAvgPool2d extends Module implements TensorModule {
  readonly outputSize: [number, number];

  /** @throws MisconfigurationError for a non-positive output size. */
  constructor(outputSize: number | [number, number]) {
    super();
    this.outputSize = pair('outputSize', outputSize);
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new Error(`AdaptiveAvgPool2d expects NHWC input [B, H, W, C], got [${x.shape.join(', ')}]`);
    const [, h, w] = x.shape as [number, number, number, number];
    const [oh, ow] = this.outputSize;
    return tf.tidy(() => {
      if (oh === 1 && ow === 1) return tf.mean(x, [1, 2], true);
      if (h % oh === 0 && w % ow === 0) {
        const k: [number, number] = [h / oh, w / ow];
        return tf.avgPool(x as tf.Tensor4D, k, k, 'valid');
      }
      // Bins overlap when the size does not divide: average rows, then columns (the mean
      // over a rectangle is the mean of its row means, as every row has the same width).
      return adaptiveAxis(adaptiveAxis(x, 1, oh), 2, ow);
    });
  }
}

function adaptiveAxis(x: Tensor, axis: number, out: number): Tensor {
  const n = x.shape[axis]!;
  const parts: Tensor[] = [];
  for (let i = 0; i < out; i++) {
    const start = Math.floor((i * n) / out);
    const end = Math.ceil(((i + 1) * n) / out);
    const begin = x.shape.map((_, a) => (a === axis ? start : 0));
    const size = x.shape.map((d, a) => (a === axis ? end - start : d));
    parts.push(tf.mean(tf.slice(x, begin, size), axis, true));
  }
  return tf.concat(parts, axis);
}
