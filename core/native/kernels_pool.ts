/**
 * 2-D pooling (AvgPool, MaxPool and their gradients) over NHWC images. tfjs' JavaScript
 * AvgPoolGrad took 74% of a CLIP RN50 training step (the ModifiedResNet average-pools before
 * every strided convolution), 16 s of a 22 s step at batch 8.
 *
 * Semantics are tfjs' cpu kernels', quirks included: AvgPool divides by the in-bounds pixel
 * count, but AvgPoolGrad always scales by 1/(filterHeight·filterWidth); MaxPool skips NaNs;
 * 1×1 pools that change nothing are left to the cpu kernel (an identity).
 */
import { tf } from '../tf.js';
import type { NativeKernel } from './context.js';
import { alloc, f32, input, output } from './context.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

const PoolMode = { Avg: 0, Max: 1 } as const;

function poolInfo(shape: number[], attrs: Record<string, unknown>, withRounding: boolean): PoolInfo {
  return tf.backend_util.computePool2DInfo(shape as [number, number, number, number],
    attrs.filterSize as [number, number] | number, attrs.strides as [number, number] | number, 1,
    attrs.pad as 'valid' | 'same' | number, withRounding ? attrs.dimRoundingMode as 'floor' | undefined : undefined);
}

/** The addon's 14-int geometry (the same layout as convolutions). */
function geom(info: PoolInfo): Int32Array {
  return Int32Array.from([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight,
    info.filterWidth, info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth]);
}

function isIdentity(info: PoolInfo): boolean {
  return info.filterWidth === 1 && info.filterHeight === 1 && tf.util.arraysEqual(info.inShape, info.outShape);
}

function poolKernel(kernelName: string, mode: number): NativeKernel {
  return {
    kernelName,
    func: (inputs, attrs, backend, addon) => {
      const x = input(inputs, 'x');
      const xv = f32(backend, x);
      if (!x || !xv || x.shape.length !== 4) return null;
      const info = poolInfo(x.shape, attrs, true);
      if (isIdentity(info)) return null;
      const out = alloc(tf.util.sizeFromShape(info.outShape));
      if (out.length > 0) addon.pool2d(xv, out, geom(info), mode);
      return output(backend, info.outShape.slice(), out);
    },
  };
}

const avgPoolGrad: NativeKernel = {
  kernelName: 'AvgPoolGrad',
  func: (inputs, attrs, backend, addon) => {
    const dy = input(inputs, 'dy');
    const x = input(inputs, 'input');
    const dyv = f32(backend, dy);
    if (!dy || !x || !dyv || x.dtype !== 'float32' || x.shape.length !== 4) return null;
    const info = poolInfo(x.shape, attrs, false);
    const dx = alloc(tf.util.sizeFromShape(x.shape));
    // the average's gradient needs only dy: dy stands in for the unused x argument
    if (dx.length > 0) addon.pool2dGrad(dyv, dyv, dx, geom(info), PoolMode.Avg, 1 / (info.filterHeight * info.filterWidth));
    return output(backend, x.shape.slice(), dx);
  },
};

const maxPoolGrad: NativeKernel = {
  kernelName: 'MaxPoolGrad',
  func: (inputs, attrs, backend, addon) => {
    const dy = input(inputs, 'dy');
    const x = input(inputs, 'input');
    const dyv = f32(backend, dy);
    const xv = f32(backend, x);
    if (!dy || !x || !dyv || !xv || x.shape.length !== 4) return null;
    const info = poolInfo(x.shape, attrs, true);
    const dx = alloc(xv.length);
    if (dx.length > 0) addon.pool2dGrad(dyv, xv, dx, geom(info), PoolMode.Max, 1);
    return output(backend, x.shape.slice(), dx);
  },
};

/** The pooling kernels of the native backend. */
export const poolKernels: NativeKernel[] = [
  poolKernel('AvgPool', PoolMode.Avg), poolKernel('MaxPool', PoolMode.Max), avgPoolGrad, maxPoolGrad,
];
