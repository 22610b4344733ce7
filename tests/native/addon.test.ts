import { beforeAll, describe, expect, it } from 'vitest';

import { loadAddon, nativeInfo, setBlasEnabled, setNumThreads } from '../../core/native/addon.js';
import type { NativeAddon } from '../../core/native/addon.js';
import { expectClose, randomArray } from './helpers.js';

/** Naive row-major reference for one GEMM. */
function refGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ta ? p * m + i : i * k + p] * b[tb ? j * k + p : p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

let addon: NativeAddon;
const isas: string[] = [];

beforeAll(() => {
  const a = loadAddon();
  expect(a, 'the native addon must be built').not.toBeNull();
  addon = a as NativeAddon;
  const best = nativeInfo()?.isa ?? 'base';
  for (const isa of ['base', 'avx2', 'avx512']) {
    isas.push(isa);
    if (isa === best) break;
  }
});

describe('native addon', () => {
  it('reports its configuration', () => {
    const info = nativeInfo();
    expect(info).not.toBeNull();
    expect(['base', 'avx2', 'avx512']).toContain(info?.isa);
    expect(info?.threads).toBeGreaterThanOrEqual(1);
    expect(setNumThreads(1)).toBe(1);
    expect(setNumThreads(2)).toBe(2);
  });

  const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [13, 1, 29], [1, 37, 19], [67, 45, 130],
    [150, 33, 300], [5, 200, 2], [0, 4, 3], [4, 0, 3], [4, 3, 0], [130, 170, 260]];

  for (const blas of [true, false]) {
    it(`GEMM matches a float64 reference (${blas ? 'BLAS if present' : 'built-in'}, every ISA, all transposes)`, () => {
      setBlasEnabled(blas);
      for (const isa of isas) {
        addon.init('auto', isa, 2);
        for (const [m, n, k] of shapes) {
          for (const ta of [false, true]) {
            for (const tb of [false, true]) {
              const a = randomArray(m * k, m + 3 * k);
              const b = randomArray(k * n, n + 7 * k);
              const c = new Float32Array(m * n).fill(Number.NaN); // beta = 0 must overwrite garbage
              addon.gemm(a, b, c, 1, m, n, k, ta, tb, null, null);
              expectClose(c, refGemm(a, b, m, n, k, ta, tb), 1e-5, 1e-5 * Math.sqrt(k + 1), `${isa} ${m}x${n}x${k} ${ta} ${tb}`);
            }
          }
        }
      }
      addon.init('auto', '', 2);
      setBlasEnabled(true);
    });
  }

  it('batched GEMM with broadcast batch indices matches per-matrix references', () => {
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      const [batch, m, n, k] = [6, 9, 11, 17];
      const a = randomArray(3 * m * k, 11);
      const b = randomArray(batch * k * n, 12);
      const aIdx = Int32Array.from([0, 1, 2, 0, 1, 2]);
      const c = new Float32Array(batch * m * n);
      addon.gemm(a, b, c, batch, m, n, k, false, true, aIdx, null);
      for (let i = 0; i < batch; i++) {
        const ref = refGemm(a.subarray(aIdx[i] * m * k), b.subarray(i * k * n), m, n, k, false, true);
        expectClose(c.subarray(i * m * n, (i + 1) * m * n), ref, 1e-5, 1e-5, `batch ${i}`);
      }
    }
    setNumThreads(2);
  });

  it('rejects a wrong argument type instead of crashing', () => {
    expect(() => addon.unary(0, new Float64Array(3) as unknown as Float32Array, new Float32Array(3), 0)).toThrow(/typed array/);
  });
});
