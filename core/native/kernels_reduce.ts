/**
 * Reductions over any set of axes (Sum, Mean, Max, Min, Prod) and Softmax over the last axis.
 */
import type { NativeAddon } from './addon.js';
import type { NativeKernel } from './context.js';
import { alloc, f32, input, output } from './context.js';
import { i32, normAxes, sizeOf } from './shape.js';

/** Reduce op codes, as native/src/common.h numbers them. */
export const ReduceCode = { Sum: 0, Max: 1, Min: 2, Prod: 3 } as const;

/** Reduce float32 data over `axes` (normalised); returns the kept-dimension values. */
export function nativeReduce(addon: NativeAddon, op: number, xv: Float32Array, shape: number[], axes: number[],
  scale = 1): Float32Array {
  const flags = shape.map((_, d) => (axes.includes(d) ? 1 : 0));
  const out = alloc(sizeOf(shape.filter((_, d) => !flags[d])));
  if (out.length === 0) return out;
  if (shape.length === 0) {
    out[0] = xv[0] * scale;
    return out;
  }
  addon.reduce(op, xv, out, i32(shape), Int32Array.from(flags), scale);
  return out;
}

function reduceKernel(kernelName: string, op: number, axisAttr: string, mean = false): NativeKernel {
  return {
    kernelName,
    func: (inputs, attrs, backend, addon) => {
      const x = input(inputs, 'x');
      const xv = f32(backend, x);
      if (!x || !xv) return null;
      const axes = normAxes(attrs[axisAttr] as number | number[] | undefined, x.shape.length);
      const count = sizeOf(axes.map((a) => x.shape[a]));
      // tfjs' mean of nothing is 0, not NaN
      const values = nativeReduce(addon, op, xv, x.shape, axes, mean && count > 0 ? 1 / count : 1);
      const shape = attrs.keepDims
        ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : x.shape.filter((_, i) => !axes.includes(i));
      return output(backend, shape, values);
    },
  };
}

const softmax: NativeKernel = {
  kernelName: 'Softmax',
  func: (inputs, attrs, backend, addon) => {
    const x = input(inputs, 'logits');
    const xv = f32(backend, x);
    if (!x || !xv || x.shape.length === 0) return null;
    const rank = x.shape.length;
    const dim = Number(attrs.dim ?? -1);
    if (dim !== -1 && dim !== rank - 1) return null;
    const cols = x.shape[rank - 1];
    const y = alloc(xv.length);
    if (y.length > 0) addon.softmax(xv, y, xv.length / cols, cols, false, 1);
    return output(backend, x.shape.slice(), y);
  },
};

/** The reduction kernels of the native backend. */
export const reduceKernels: NativeKernel[] = [
  reduceKernel('Sum', ReduceCode.Sum, 'axis'),
  reduceKernel('Mean', ReduceCode.Sum, 'axis', true),
  reduceKernel('Max', ReduceCode.Max, 'reductionIndices'),
  reduceKernel('Min', ReduceCode.Min, 'axis'),
  reduceKernel('Prod', ReduceCode.Prod, 'axis'),
  softmax,
];
