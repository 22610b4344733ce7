/**
 * Shared test helpers: run the same computation on tfjs `cpu` and on `lightclip-cpu` and compare.
 */
import { expect } from 'vitest';

import { tf } from '../../core/tf.js';
import type { Tensor } from '../../core/tf.js';
import { registerNativeBackend } from '../../core/native/backend.js';

export const NATIVE = 'lightclip-cpu';

/** Register the native backend once; fails the test file when the addon did not build. */
export async function setupNative(): Promise<void> {
  expect(registerNativeBackend(), 'the native addon must be built (npm run build:native)').toBe(true);
  await tf.setBackend('cpu');
}

/** Deterministic pseudo-random floats in [lo, hi) (xorshift32), so failures reproduce. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = lo + (hi - lo) * (s / 4294967296);
  }
  return out;
}

let seedCounter = 1;
/** A random float32 tensor of `shape` (made on whatever backend is active). */
export function rand(shape: number[], lo = -1, hi = 1): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: randomArray(n, seedCounter++, lo, hi) };
}

/** Materialise a rand() spec as a tensor on the active backend. */
export function t(spec: { shape: number[]; data: Float32Array }): Tensor {
  return tf.tensor(spec.data, spec.shape, 'float32');
}

/** Values and shapes of fn's outputs on one backend (tensors disposed afterwards). */
export function runOn(backend: string, fn: () => Tensor | Tensor[]): { shape: number[]; dtype: string; values: Float32Array | Int32Array | Uint8Array }[] {
  const prev = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const out = fn();
      const list = Array.isArray(out) ? out : [out];
      return list.map((x) => ({ shape: x.shape.slice(), dtype: x.dtype, values: x.dataSync() as Float32Array }));
    });
  } finally {
    tf.setBackend(prev);
  }
}

/** Assert |a - b| <= atol + rtol*|b| elementwise (NaN must match NaN, inf must match inf). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (Number.isNaN(b)) {
      if (!Number.isNaN(a)) { worst = i; worstErr = Infinity; break; }
      continue;
    }
    if (!Number.isFinite(b)) {
      if (a !== b) { worst = i; worstErr = Infinity; break; }
      continue;
    }
    const err = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(err <= 0) && (worst < 0 || err > worstErr)) { worst = i; worstErr = err; }
  }
  if (worst >= 0) {
    throw new Error(`${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Run fn on both backends and compare every output (shape, dtype, values). */
export function compareBackends(fn: () => Tensor | Tensor[], rtol = 1e-5, atol = 1e-6, label = ''): void {
  const ref = runOn('cpu', fn);
  const got = runOn(NATIVE, fn);
  expect(got.length, `${label} outputs`).toBe(ref.length);
  ref.forEach((r, i) => {
    expect(got[i].shape, `${label} shape of output ${i}`).toEqual(r.shape);
    expect(got[i].dtype, `${label} dtype of output ${i}`).toBe(r.dtype);
    expectClose(got[i].values, r.values, rtol, atol, `${label} output ${i}`);
  });
}
