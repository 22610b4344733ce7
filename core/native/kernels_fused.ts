/**
 * Kernels with no tfjs counterpart, registered only on `lightclip-cpu` and reached through the
 * functions of fused.ts: LayerNorm, GELU-family and scaled (log-)softmax, forward and backward;
 * the attention heads split of a packed q/k/v projection and its inverse.
 */
import type { NativeKernel } from './context.js';
import { alloc, f32, input, output } from './context.js';
import { stridedCopy } from './kernels_layout.js';

/** Kernel names of the fused ops. */
export const FusedKernelName = {
  LayerNorm: 'LightclipLayerNorm',
  LayerNormGrad: 'LightclipLayerNormGrad',
  Gelu: 'LightclipGelu',
  GeluGrad: 'LightclipGeluGrad',
  Softmax: 'LightclipSoftmax',
  SoftmaxGrad: 'LightclipSoftmaxGrad',
  BatchNorm: 'LightclipBatchNorm',
  BatchNormGrad: 'LightclipBatchNormGrad',
  SplitHeads: 'LightclipSplitHeads',
  MergeHeads: 'LightclipMergeHeads',
} as const;

/** GELU variants, as native/src/common.h numbers them. */
export const GeluKindCode = { erf: 0, quick: 1, tanh: 2 } as const;

const layerNorm: NativeKernel = {
  kernelName: FusedKernelName.LayerNorm,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const g = f32(backend, input(inputs, 'gamma'));
    const b = f32(backend, input(inputs, 'beta'));
    if (!x || !xv || !g || !b || x.shape.length === 0) return null;
    const cols = x.shape[x.shape.length - 1];
    const rows = cols === 0 ? 0 : xv.length / cols;
    const y = alloc(xv.length);
    const mean = alloc(rows);
    const rstd = alloc(rows);
    if (xv.length > 0) addon.layerNorm(xv, g, b, y, mean, rstd, rows, cols, Number(attrs.eps));
    const statShape = x.shape.slice(0, -1);
    return [output(backend, x.shape.slice(), y), output(backend, statShape, mean), output(backend, statShape.slice(), rstd)];
  },
};

const layerNormGrad: NativeKernel = {
  kernelName: FusedKernelName.LayerNormGrad,
  func: (inputs, _attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const dy = f32(backend, input(inputs, 'dy'));
    const g = f32(backend, input(inputs, 'gamma'));
    const mean = f32(backend, input(inputs, 'mean'));
    const rstd = f32(backend, input(inputs, 'rstd'));
    if (!x || !xv || !dy || !g || !mean || !rstd) return null;
    const cols = x.shape[x.shape.length - 1];
    const rows = cols === 0 ? 0 : xv.length / cols;
    const dx = alloc(xv.length);
    // zeros: with no rows the addon is not called and these sums stay empty
    const dg = alloc(cols, true);
    const db = alloc(cols, true);
    if (xv.length > 0) addon.layerNormGrad(xv, dy, g, mean, rstd, dx, dg, db, rows, cols);
    return [output(backend, x.shape.slice(), dx), output(backend, [cols], dg), output(backend, [cols], db)];
  },
};

const gelu: NativeKernel = {
  kernelName: FusedKernelName.Gelu,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const y = alloc(xv.length);
    addon.gelu(Number(attrs.kind), xv, y);
    return output(backend, x.shape.slice(), y);
  },
};

const geluGrad: NativeKernel = {
  kernelName: FusedKernelName.GeluGrad,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const dy = f32(backend, input(inputs, 'dy'));
    if (!x || !xv || !dy) return null;
    const dx = alloc(xv.length);
    addon.geluGrad(Number(attrs.kind), xv, dy, dx);
    return output(backend, x.shape.slice(), dx);
  },
};

const softmax: NativeKernel = {
  kernelName: FusedKernelName.Softmax,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    if (!x || !xv || x.shape.length === 0) return null;
    const cols = x.shape[x.shape.length - 1];
    const y = alloc(xv.length);
    if (y.length > 0) addon.softmax(xv, y, xv.length / cols, cols, Boolean(attrs.log), Number(attrs.scale ?? 1));
    return output(backend, x.shape.slice(), y);
  },
};

// Only the softmax (not log-softmax) gradient is native; fused.ts composes the other.
const softmaxGrad: NativeKernel = {
  kernelName: FusedKernelName.SoftmaxGrad,
  func: (inputs, attrs, backend, addon) => {
    const y = input(inputs, 'y');
    const yv = f32(backend, y);
    const dy = f32(backend, input(inputs, 'dy'));
    if (!y || !yv || !dy || y.shape.length === 0) return null;
    const cols = y.shape[y.shape.length - 1];
    const dx = alloc(yv.length);
    if (dx.length > 0) addon.softmaxGrad(yv, dy, dx, yv.length / cols, cols, Number(attrs.scale ?? 1));
    return output(backend, y.shape.slice(), dx);
  },
};

/**
 * Strides of part `i` (0 = q, 1 = k, 2 = v) of a packed [B, L, 3·H·d] projection read as
 * [B, H, L, d], and the part's offset.
 */
function packedHeads(b: number, l: number, h: number, d: number, i: number): { offset: number; strides: number[] } {
  const e = h * d;
  return { offset: i * e, strides: [l * 3 * e, d, 3 * e, 1] };
}

// x [B, L, 3E] -> q, k, v [B, H, L, d]: three strided copies straight from the projection.
const splitHeads: NativeKernel = {
  kernelName: FusedKernelName.SplitHeads,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const h = Number(attrs.heads);
    if (!x || !xv || x.shape.length !== 3 || x.shape[2] % (3 * h) !== 0) return null;
    const [b, l, e3] = x.shape;
    const d = e3 / (3 * h);
    const shape = [b, h, l, d];
    return [0, 1, 2].map((i) => {
      const out = alloc(b * h * l * d);
      const { offset, strides } = packedHeads(b, l, h, d, i);
      stridedCopy(addon, xv, offset, strides, out, 0, [h * l * d, l * d, d, 1], shape);
      return output(backend, shape.slice(), out);
    });
  },
};

// dq, dk, dv [B, H, L, d] -> d(x) [B, L, 3E], the gradient of splitHeads: every element of the
// output is written by exactly one of the three copies, so no zero fill is needed.
const mergeHeads: NativeKernel = {
  kernelName: FusedKernelName.MergeHeads,
  func: (inputs, _attrs, backend, addon) => {
    const parts = ['q', 'k', 'v'].map((n) => input(inputs, n));
    const vals = parts.map((p) => f32(backend, p));
    const q = parts[0];
    if (!q || q.shape.length !== 4 || vals.some((v) => !v)) return null;
    const [b, h, l, d] = q.shape;
    const out = alloc(b * l * 3 * h * d);
    vals.forEach((v, i) => {
      const { offset, strides } = packedHeads(b, l, h, d, i);
      stridedCopy(addon, v as Float32Array, 0, [h * l * d, l * d, d, 1], out, offset, strides, [b, h, l, d]);
    });
    return output(backend, [b, l, 3 * h * d], out);
  },
};

// Training-mode batch norm over every axis but the last: y, and the batch mean and biased
// variance per channel (for the running statistics and the gradient).
const batchNorm: NativeKernel = {
  kernelName: FusedKernelName.BatchNorm,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const g = f32(backend, input(inputs, 'gamma'));
    const b = f32(backend, input(inputs, 'beta'));
    if (!x || !xv || x.shape.length === 0) return null;
    const cols = x.shape[x.shape.length - 1];
    const rows = cols === 0 ? 0 : xv.length / cols;
    const y = alloc(xv.length);
    const mean = alloc(cols);
    const variance = alloc(cols);
    addon.batchNorm(xv, g, b, y, mean, variance, rows, cols, Number(attrs.eps));
    return [output(backend, x.shape.slice(), y), output(backend, [cols], mean), output(backend, [cols], variance)];
  },
};

const batchNormGrad: NativeKernel = {
  kernelName: FusedKernelName.BatchNormGrad,
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'x');
    const xv = f32(backend, x);
    const dy = f32(backend, input(inputs, 'dy'));
    const g = f32(backend, input(inputs, 'gamma'));
    const mean = f32(backend, input(inputs, 'mean'));
    const variance = f32(backend, input(inputs, 'variance'));
    if (!x || !xv || !dy || !mean || !variance) return null;
    const cols = x.shape[x.shape.length - 1];
    const rows = cols === 0 ? 0 : xv.length / cols;
    const dx = alloc(xv.length);
    const dg = alloc(cols);
    const db = alloc(cols);
    addon.batchNormGrad(xv, dy, g, mean, variance, dx, dg, db, rows, cols, Number(attrs.eps));
    return [output(backend, x.shape.slice(), dx), output(backend, [cols], dg), output(backend, [cols], db)];
  },
};

/** The fused kernels of the native backend. */
export const fusedKernels: NativeKernel[] = [
  layerNorm, layerNormGrad, gelu, geluGrad, softmax, softmaxGrad, batchNorm, batchNormGrad, splitHeads, mergeHeads,
];
