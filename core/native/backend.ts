/**
 * The `lightclip-cpu` tfjs backend: tfjs' MathBackendCPU (same tensor storage, same fallback
 * kernels) with the hot kernels replaced by the native addon's. Gradients need nothing extra:
 * tfjs registers them per kernel name, whatever the backend.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DataId, DataType, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import type { backend_util } from '@tensorflow/tfjs';

import { tf } from '../tf.js';
import type { NativeAddon, NativeInfo } from './addon.js';
import { addonLoadError, loadAddon, nativeInfo } from './addon.js';
import type { KernelInputs, NativeKernel } from './context.js';
import { elementwiseKernels } from './kernels_elementwise.js';
import { fusedKernels } from './kernels_fused.js';
import { layoutKernels } from './kernels_layout.js';
import { matmulKernels } from './kernels_matmul.js';
import { poolKernels } from './kernels_pool.js';
import { reduceKernels } from './kernels_reduce.js';
import { bufferPool } from './pool.js';

export { setNumThreads, setBlasEnabled, nativeInfo, addonLoadError, defaultNumThreads } from './addon.js';
export type { NativeInfo } from './addon.js';
export { bufferPool } from './pool.js';
export type { PoolStats } from './pool.js';

/** Name under which the native backend is registered with tfjs. */
export const NATIVE_BACKEND_NAME = 'lightclip-cpu';

/**
 * Priority given to tfjs: above `cpu` (1) and `webgl` (2), below `tensorflow` (3, tfjs-node),
 * matching the preference order of DESIGN.md §2 when nobody calls tf.setBackend.
 */
export const NATIVE_BACKEND_PRIORITY = 2.5;

/** The tfjs cpu backend, unchanged except for the kernels registered under its own name. */
export class NativeBackend extends MathBackendCPU {
  /** Addon build facts (ISA, BLAS, threads) for logs and benchmarks. */
  readonly native: NativeInfo | null = nativeInfo();

  constructor() {
    super();
    // MathBackendCPU prints "looks like you are running TensorFlow.js in Node.js ... install
    // tfjs-node" on first use; that advice does not apply to this backend. The flag is private.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  // The four hooks below keep the output-buffer pool (pool.ts) told of every tensor made on,
  // read out of, and deleted from an array it allocated.

  override write(values: backend_util.BackendValues, shape: number[], dtype: DataType): DataId {
    bufferPool.bind(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: backend_util.BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    bufferPool.bind(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    if (this.data.has(dataId)) bufferPool.escape(this.data.get(dataId).values);
    return super.readSync(dataId);
  }

  override read(dataId: DataId): Promise<backend_util.BackendValues> {
    if (this.data.has(dataId)) bufferPool.escape(this.data.get(dataId).values);
    return super.read(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const done = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) bufferPool.release(values);
    return done;
  }
}

/** Every kernel the native backend implements itself (the rest are the cpu kernels). */
export const nativeKernels: readonly NativeKernel[] = [
  ...matmulKernels, ...elementwiseKernels, ...layoutKernels, ...reduceKernels, ...fusedKernels, ...poolKernels,
];

/** Kernel names served natively (for tests, benchmarks and logs). */
export function nativeKernelNames(): string[] {
  return nativeKernels.map((k) => k.kernelName);
}

// KernelFunc's params type is not exported by name; this is its shape.
type KernelParams = Parameters<KernelFunc>[0];

function wrap(kernel: NativeKernel, addon: NativeAddon, fallback: KernelFunc | undefined): KernelFunc {
  return (params: KernelParams) => {
    // tfjs passes the backend as its KernelBackend base type; ours is a MathBackendCPU
    const backend = params.backend as MathBackendCPU;
    const out = kernel.func(params.inputs as KernelInputs, (params.attrs ?? {}) as NamedAttrMap, backend, addon);
    if (out !== null) return out as TensorInfo | TensorInfo[];
    if (!fallback) throw new Error(`lightclip-cpu: no fallback for ${kernel.kernelName} with these inputs`);
    return fallback(params);
  };
}

let registered: boolean | undefined;

/**
 * Register `lightclip-cpu` with tfjs: the native kernels, and a copy of every other `cpu`
 * kernel registration. Returns false, after printing a warning with the reason, when the addon
 * is unavailable (tfjs `cpu` then remains the CPU backend). Idempotent.
 */
export function registerNativeBackend(): boolean {
  if (registered !== undefined) return registered;
  const addon = loadAddon();
  if (!addon) {
    console.warn(`[lightclip] native CPU backend unavailable (${addonLoadError()}); using the tfjs cpu backend`);
    registered = false;
    return false;
  }
  const cpuKernels = tf.getKernelsForBackend('cpu');
  const byName = new Map<string, KernelConfig>(cpuKernels.map((k) => [k.kernelName, k]));
  const nativeNames = new Set<string>();
  for (const k of nativeKernels) {
    nativeNames.add(k.kernelName);
    tf.registerKernel({
      kernelName: k.kernelName,
      backendName: NATIVE_BACKEND_NAME,
      kernelFunc: wrap(k, addon, byName.get(k.kernelName)?.kernelFunc),
    });
  }
  for (const k of cpuKernels) {
    if (!nativeNames.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND_NAME });
  }
  tf.registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(), NATIVE_BACKEND_PRIORITY);
  registered = true;
  return true;
}
