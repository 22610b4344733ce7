/**
 * What every native kernel works with: the cpu backend's data storage (our backend extends
 * MathBackendCPU, so tensors live in the same Float32Arrays), the addon, and a uniform way to
 * say "not this case" so that the registration falls through to the tfjs cpu kernel.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import type { NativeAddon } from './addon.js';
import { bufferPool } from './pool.js';

/** A kernel's inputs as tfjs passes them (a name map; Concat and AddN get an array). */
export type KernelInputs = Record<string, TensorInfo> | TensorInfo[];

/**
 * A native kernel: returns its output, or null to hand the call to the tfjs cpu kernel
 * (unsupported dtype, layout or attribute).
 */
export type NativeKernelFunc = (
  inputs: KernelInputs,
  attrs: NamedAttrMap,
  backend: MathBackendCPU,
  addon: NativeAddon,
) => TensorInfo | TensorInfo[] | null;

/** One kernel registration of the native backend. */
export interface NativeKernel {
  kernelName: string;
  func: NativeKernelFunc;
}

/**
 * The float32 values of a tensor, or null when it is not float32. tfjs' cpu Cast int32->float32
 * keeps the Int32Array under a float32 dtype, so such data is converted here (once per use).
 */
export function f32(backend: MathBackendCPU, t: TensorInfo | undefined): Float32Array | null {
  if (!t || t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  if (v instanceof Int32Array || v instanceof Uint8Array) return new Float32Array(v);
  return null;
}

/** The int32 values of an index tensor, or null. */
export function i32Values(backend: MathBackendCPU, t: TensorInfo | undefined): Int32Array | null {
  if (!t || t.dtype !== 'int32') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Int32Array ? v : null;
}

/**
 * An output array of `n` floats from the recycling pool (pool.ts). Its contents are arbitrary
 * unless `zero`: kernels that accumulate into their output or leave parts of it unwritten
 * (padding, scatter) must ask for zeros.
 */
export function alloc(n: number, zero = false): Float32Array {
  return bufferPool.alloc(n, zero);
}

/** Give a scratch array from {@link alloc} that no tensor holds back to the pool. */
export function recycle(values: Float32Array): void {
  bufferPool.recycle(values);
}

/** A new float32 tensor owning `values`. */
export function output(backend: MathBackendCPU, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', values);
}

/** Named input `name` (kernels with named inputs). */
export function input(inputs: KernelInputs, name: string): TensorInfo | undefined {
  return Array.isArray(inputs) ? undefined : inputs[name];
}
