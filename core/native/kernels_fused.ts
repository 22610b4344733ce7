/**
 * Kernels with no tfjs counterpart, registered only on `lightclip-cpu` and reached through the
 * functions of fused.ts: LayerNorm, GELU-family and scaled (log-)softmax, forward and backward.
 */
import type { NativeKernel } from './context.js';
import { f32, input, output } from './context.js';

/** Kernel names of the fused ops. */
export const FusedKernelName = {
  LayerNorm: 'LightclipLayerNorm',
  LayerNormGrad: 'LightclipLayerNormGrad',
  Gelu: 'LightclipGelu',
  GeluGrad: 'LightclipGeluGrad',
  Softmax: 'LightclipSoftmax',
  SoftmaxGrad: 'LightclipSoftmaxGrad',
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
    const y = new Float32Array(xv.length);
    const mean = new Float32Array(rows);
    const rstd = new Float32Array(rows);
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
    const dx = new Float32Array(xv.length);
    const dg = new Float32Array(cols);
    const db = new Float32Array(cols);
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
    const y = new Float32Array(xv.length);
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
    const dx = new Float32Array(xv.length);
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
    const y = new Float32Array(xv.length);
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
    const dx = new Float32Array(yv.length);
    if (dx.length > 0) addon.softmaxGrad(yv, dy, dx, yv.length / cols, cols, Number(attrs.scale ?? 1));
    return output(backend, y.shape.slice(), dx);
  },
};

/** The fused kernels of the native backend. */
export const fusedKernels: NativeKernel[] = [layerNorm, layerNormGrad, gelu, geluGrad, softmax, softmaxGrad];
