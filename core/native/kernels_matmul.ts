/**
 * GEMM-based kernels: BatchMatMul, _FusedMatMul, and Conv2D with both backprops lowered to
 * im2col + GEMM (NHWC, the layout tfjs uses; NCHW and depthwise go to the cpu kernels).
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { tf } from '../tf.js';
import type { NativeAddon } from './addon.js';
import type { KernelInputs, NativeKernel } from './context.js';
import { alloc, f32, input, output, recycle } from './context.js';
import { BinaryCode, UnaryCode, nativeBinary } from './kernels_elementwise.js';
import { broadcastStrides, sizeOf } from './shape.js';

/** Batch index of each operand for every output batch, or null when it is simply i. */
function batchIndices(batchShape: number[], outBatch: number[]): Int32Array | null {
  const n = sizeOf(outBatch);
  if (batchShape.length === outBatch.length && batchShape.every((d, i) => d === outBatch[i])) return null;
  const strides = broadcastStrides(batchShape, outBatch);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let r = i;
    let off = 0;
    for (let d = outBatch.length - 1; d >= 0; d--) {
      off += (r % outBatch[d]) * strides[d];
      r = Math.floor(r / outBatch[d]);
    }
    idx[i] = off;
  }
  return idx;
}

/** op(a) @ op(b) with broadcast batch dimensions; null when not float32. */
export function nativeMatMul(inputs: KernelInputs, transposeA: boolean, transposeB: boolean,
  backend: MathBackendCPU, addon: NativeAddon): { shape: number[]; values: Float32Array } | null {
  const a = input(inputs, 'a');
  const b = input(inputs, 'b');
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!a || !b || !av || !bv || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const ka = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (ka !== kb) {
    throw new Error(`Error in matMul: inner shapes (${ka}) and (${kb}) of Tensors with shapes ` +
      `${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  const batch = sizeOf(outBatch);
  const values = alloc(batch * m * n);
  if (values.length > 0) {
    addon.gemm(av, bv, values, batch, m, n, ka, transposeA, transposeB,
      batchIndices(batchA, outBatch), batchIndices(batchB, outBatch));
  }
  return { shape: [...outBatch, m, n], values };
}

const batchMatMul: NativeKernel = {
  kernelName: 'BatchMatMul',
  func: (inputs, attrs, backend, addon) => {
    const r = nativeMatMul(inputs, Boolean(attrs.transposeA), Boolean(attrs.transposeB), backend, addon);
    return r && output(backend, r.shape, r.values);
  },
};

const activationCodes: Record<string, number | null> = {
  linear: null, relu: UnaryCode.Relu, relu6: UnaryCode.Relu6, elu: UnaryCode.Elu, sigmoid: UnaryCode.Sigmoid,
};

const fusedMatMul: NativeKernel = {
  kernelName: '_FusedMatMul',
  func: (inputs, attrs, backend, addon) => {
    const activation = String(attrs.activation ?? 'linear');
    if (!(activation in activationCodes)) return null; // prelu, leakyrelu: cpu kernel
    const bias = input(inputs, 'bias');
    const biasV = bias ? f32(backend, bias) : null;
    if (bias && !biasV) return null;
    const r = nativeMatMul(inputs, Boolean(attrs.transposeA), Boolean(attrs.transposeB), backend, addon);
    if (!r) return null;
    if (bias && biasV) nativeBinary(addon, BinaryCode.Add, r.values, r.shape, biasV, bias.shape, r.shape, r.values);
    const act = activationCodes[activation];
    if (act !== null) addon.unary(act, r.values, r.values, 0);
    return output(backend, r.shape, r.values);
  },
};

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

function convGeom(info: ConvInfo, images: number): Int32Array {
  return Int32Array.from([images, info.inHeight, info.inWidth, info.inChannels, info.filterHeight,
    info.filterWidth, info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth]);
}

/** A 1x1, stride-1, unpadded convolution is a plain GEMM over the pixels: no im2col needed. */
function isPointwise(info: ConvInfo): boolean {
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0;
}

/** Images per im2col chunk, bounding the column buffer to about 128 MB. */
function chunkImages(info: ConvInfo): number {
  const perImage = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth * info.inChannels;
  return Math.max(1, Math.min(info.batchSize, Math.floor((32 << 20) / Math.max(1, perImage))));
}

function convInfoFor(inShape: number[], filterShape: number[], attrs: Record<string, unknown>,
  dilations: unknown): ConvInfo | null {
  const dataFormat = tf.backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW') ?? 'NHWC');
  if (dataFormat !== 'channelsLast') return null;
  return tf.backend_util.computeConv2DInfo(inShape as [number, number, number, number],
    filterShape as [number, number, number, number], attrs.strides as [number, number],
    dilations as [number, number], attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined,
    false, dataFormat);
}

const conv2D: NativeKernel = {
  kernelName: 'Conv2D',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const filter = input(inputs, 'filter');
    const xv = f32(backend, x);
    const wv = f32(backend, filter);
    if (!x || !filter || !xv || !wv) return null;
    const info = convInfoFor(x.shape, filter.shape, attrs, attrs.dilations ?? 1);
    if (!info) return null;
    const pix = info.outHeight * info.outWidth;
    const kdim = info.filterHeight * info.filterWidth * info.inChannels;
    const inImage = info.inHeight * info.inWidth * info.inChannels;
    const out = alloc(info.batchSize * pix * info.outChannels);
    const step = chunkImages(info);
    for (let b0 = 0; b0 < info.batchSize && out.length > 0; b0 += step) {
      const nb = Math.min(step, info.batchSize - b0);
      const xs = xv.subarray(b0 * inImage, (b0 + nb) * inImage);
      let cols = xs;
      if (!isPointwise(info)) {
        cols = alloc(nb * pix * kdim);
        addon.im2col(xs, cols, convGeom(info, nb));
      }
      const os = out.subarray(b0 * pix * info.outChannels, (b0 + nb) * pix * info.outChannels);
      addon.gemm(cols, wv, os, 1, nb * pix, info.outChannels, kdim, false, false, null, null);
      if (cols !== xs) recycle(cols);
    }
    return output(backend, info.outShape.slice(), out);
  },
};

const conv2DBackpropInput: NativeKernel = {
  kernelName: 'Conv2DBackpropInput',
  func: (inputs, attrs, backend, addon) => {
    const dy = input(inputs, 'dy');
    const filter = input(inputs, 'filter');
    const dyv = f32(backend, dy);
    const wv = f32(backend, filter);
    if (!dy || !filter || !dyv || !wv) return null;
    const info = convInfoFor(attrs.inputShape as number[], filter.shape, attrs, 1);
    if (!info) return null;
    const pix = info.outHeight * info.outWidth;
    const kdim = info.filterHeight * info.filterWidth * info.inChannels;
    const inImage = info.inHeight * info.inWidth * info.inChannels;
    const dx = alloc(info.batchSize * inImage, true); // col2im adds into it
    const step = chunkImages(info);
    for (let b0 = 0; b0 < info.batchSize && dx.length > 0; b0 += step) {
      const nb = Math.min(step, info.batchSize - b0);
      const dys = dyv.subarray(b0 * pix * info.outChannels, (b0 + nb) * pix * info.outChannels);
      const dxs = dx.subarray(b0 * inImage, (b0 + nb) * inImage);
      // d(cols) = dy @ W^T, then scatter-add the columns back onto the image
      const dcols = isPointwise(info) ? dxs : alloc(nb * pix * kdim);
      addon.gemm(dys, wv, dcols, 1, nb * pix, kdim, info.outChannels, false, true, null, null);
      if (dcols !== dxs) {
        addon.col2im(dcols, dxs, convGeom(info, nb));
        recycle(dcols);
      }
    }
    return output(backend, info.inShape.slice(), dx);
  },
};

const conv2DBackpropFilter: NativeKernel = {
  kernelName: 'Conv2DBackpropFilter',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const dy = input(inputs, 'dy');
    const xv = f32(backend, x);
    const dyv = f32(backend, dy);
    if (!x || !dy || !xv || !dyv) return null;
    const info = convInfoFor(x.shape, attrs.filterShape as number[], attrs, 1);
    if (!info) return null;
    const pix = info.outHeight * info.outWidth;
    const kdim = info.filterHeight * info.filterWidth * info.inChannels;
    const inImage = info.inHeight * info.inWidth * info.inChannels;
    const step = chunkImages(info);
    // chunked: dw sums the chunks' products, so it starts at zero
    const dw = alloc(kdim * info.outChannels, step < info.batchSize);
    const part = step < info.batchSize ? alloc(dw.length) : dw;
    for (let b0 = 0; b0 < info.batchSize && dw.length > 0; b0 += step) {
      const nb = Math.min(step, info.batchSize - b0);
      const xs = xv.subarray(b0 * inImage, (b0 + nb) * inImage);
      let cols = xs;
      if (!isPointwise(info)) {
        cols = alloc(nb * pix * kdim);
        addon.im2col(xs, cols, convGeom(info, nb));
      }
      const dys = dyv.subarray(b0 * pix * info.outChannels, (b0 + nb) * pix * info.outChannels);
      // dW = cols^T @ dy, summed over the chunks
      addon.gemm(cols, dys, part, 1, kdim, info.outChannels, nb * pix, true, false, null, null);
      if (part !== dw) nativeBinary(addon, BinaryCode.Add, dw, [dw.length], part, [dw.length], [dw.length], dw);
      if (cols !== xs) recycle(cols);
    }
    if (part !== dw) recycle(part);
    return output(backend, info.filterShape.slice(), dw);
  },
};

/** The GEMM-based kernels of the native backend. */
export const matmulKernels: NativeKernel[] = [batchMatMul, fusedMatMul, conv2D, conv2DBackpropInput, conv2DBackpropFilter];
