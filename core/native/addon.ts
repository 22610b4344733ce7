/**
 * Loading the lightclip native addon (native/, built by `npm install` or `npm run build:native`).
 *
 * The addon is optional: when the .node file is missing or fails to load, {@link loadAddon}
 * returns null and {@link addonLoadError} says why, and lightclip runs on the tfjs `cpu` backend.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions native/src/addon.cc exports (all arrays are caller-allocated). */
export interface NativeAddon {
  init(blasSpec: string, isaCap: string, threads: number): NativeInfo;
  setNumThreads(n: number): number;
  setBlasActive(on: boolean): boolean;
  gemm(a: Float32Array, b: Float32Array, c: Float32Array, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aIdx: Int32Array | null, bIdx: Int32Array | null): void;
  unary(op: number, x: Float32Array, y: Float32Array, alpha: number): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array,
    aStrides: Int32Array, bStrides: Int32Array): void;
  copy(src: Float32Array, srcOffset: number, srcStrides: Int32Array, dst: Float32Array, dstOffset: number,
    dstStrides: Int32Array, shape: Int32Array): void;
  reduce(op: number, x: Float32Array, out: Float32Array, shape: Int32Array, reduced: Int32Array, scale: number): void;
  softmax(x: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean, scale: number): void;
  softmaxGrad(y: Float32Array, dy: Float32Array, dx: Float32Array, rows: number, cols: number, scale: number): void;
  layerNorm(x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array,
    mean: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number): void;
  layerNormGrad(x: Float32Array, dy: Float32Array, gamma: Float32Array | null, mean: Float32Array,
    rstd: Float32Array, dx: Float32Array, dgamma: Float32Array | null, dbeta: Float32Array | null,
    rows: number, cols: number): void;
  gelu(kind: number, x: Float32Array, y: Float32Array): void;
  geluGrad(kind: number, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number): void;
  im2col(x: Float32Array, cols: Float32Array, geom: Int32Array): void;
  col2im(cols: Float32Array, dx: Float32Array, geom: Int32Array): void;
  gather(x: Float32Array, idx: Int32Array, out: Float32Array, outer: number, n: number, inner: number): number;
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number, numSegments: number): void;
  pool2d(x: Float32Array, out: Float32Array, geom: Int32Array, mode: number): void;
  pool2dGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, geom: Int32Array, mode: number, avgScale: number): void;
  batchNorm(x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array, mean: Float32Array,
    variance: Float32Array, rows: number, cols: number, eps: number): void;
  batchNormGrad(x: Float32Array, dy: Float32Array, gamma: Float32Array | null, mean: Float32Array, variance: Float32Array,
    dx: Float32Array, dgamma: Float32Array | null, dbeta: Float32Array | null, rows: number, cols: number, eps: number): void;
}

/** What the addon reported at initialisation. */
export interface NativeInfo {
  /** Instruction set of the kernels in use: 'base', 'avx2' or 'avx512'. */
  isa: string;
  /** The BLAS library GEMMs go to ('openblas', 'mkl', 'blis', a soname), or null for the built-in GEMM. */
  blas: string | null;
  /** Why no BLAS was loaded, when none was. */
  blasReason: string | null;
  /** Threads used by the native kernels and the BLAS together. */
  threads: number;
}

let cached: NativeAddon | null | undefined;
let loadError: string | null = null;
let info: NativeInfo | null = null;

/** Candidate locations of the .node file: LIGHTCLIP_NATIVE_PATH, then native/build/Release above this file. */
function candidates(): string[] {
  const out: string[] = [];
  if (process.env.LIGHTCLIP_NATIVE_PATH) out.push(resolve(process.env.LIGHTCLIP_NATIVE_PATH));
  // core/native/addon.ts runs from the source tree (tests) and from dist/core/native (builds):
  // walk up until a native/build directory is found
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    out.push(join(dir, 'native', 'build', 'Release', 'lightclip.node'));
    dir = dirname(dir);
  }
  return out;
}

/**
 * Default thread count: LIGHTCLIP_NUM_THREADS, else the cores divided among the processes of
 * this machine (LOCAL_WORLD_SIZE or LIGHTCLIP_LOCAL_WORLD_SIZE, set by DDP launchers), so that
 * DDP workers do not oversubscribe the machine.
 */
export function defaultNumThreads(): number {
  const explicit = Number.parseInt(process.env.LIGHTCLIP_NUM_THREADS ?? '', 10);
  if (Number.isFinite(explicit) && explicit > 0) return explicit;
  const procs = Number.parseInt(process.env.LIGHTCLIP_LOCAL_WORLD_SIZE ?? process.env.LOCAL_WORLD_SIZE ?? '1', 10);
  const cores = availableParallelism();
  return Math.max(1, Math.floor(cores / (Number.isFinite(procs) && procs > 0 ? procs : 1)));
}

/**
 * Load and initialise the addon once. Returns null (see {@link addonLoadError}) when it is
 * absent, fails to load, or LIGHTCLIP_NATIVE=0.
 *
 * Environment: LIGHTCLIP_BLAS (`auto` default, `openblas`, `mkl`, `blis`, a library path, or
 * `none` for the built-in GEMM), LIGHTCLIP_ISA (cap: `base`, `avx2`, `avx512`),
 * LIGHTCLIP_NUM_THREADS, LIGHTCLIP_NATIVE_PATH.
 */
export function loadAddon(): NativeAddon | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.LIGHTCLIP_NATIVE === '0') {
    loadError = 'disabled by LIGHTCLIP_NATIVE=0';
    return null;
  }
  const path = candidates().find((p) => existsSync(p));
  if (!path) {
    loadError = 'native/build/Release/lightclip.node not found (run `npm run build:native`)';
    return null;
  }
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path) as NativeAddon;
    const threads = defaultNumThreads();
    // OpenBLAS starts its threads when it is loaded: size them right from the start. Its idle
    // threads also busy-wait for ~2^28 cycles after each GEMM, stealing the cores from the
    // native kernels that follow; 2^4 makes them sleep at once (measured: a ViT block step
    // went from 0.54-0.88 s to 0.47 s on 2 cores). Both can be overridden from the environment.
    process.env.OPENBLAS_NUM_THREADS ??= String(threads);
    process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
    info = addon.init(process.env.LIGHTCLIP_BLAS ?? 'auto', process.env.LIGHTCLIP_ISA ?? '', threads);
    cached = addon;
  } catch (err) {
    loadError = `failed to load ${path}: ${(err as Error).message}`;
  }
  return cached;
}

/** Why {@link loadAddon} returned null (null when it loaded). */
export function addonLoadError(): string | null {
  return loadError;
}

/** The addon's initialisation report, or null when it is not loaded. */
export function nativeInfo(): NativeInfo | null {
  return info ? { ...info } : null;
}

/**
 * Set the thread count of the native kernels and the BLAS together (DDP workers call this with
 * cores / local processes). Returns the count in effect, or 0 without the addon.
 */
export function setNumThreads(n: number): number {
  const addon = loadAddon();
  if (!addon || !info) return 0;
  info.threads = addon.setNumThreads(Math.max(1, Math.floor(n)));
  return info.threads;
}

/**
 * Route GEMMs to the BLAS (true, when one is loaded) or to the built-in kernel (false); for
 * tests and benchmarks. Returns whether the BLAS is now in use.
 */
export function setBlasEnabled(on: boolean): boolean {
  const addon = loadAddon();
  return addon ? addon.setBlasActive(on) : false;
}
