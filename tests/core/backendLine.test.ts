import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeNativeBackend } from '../../core/backend.js';
import { buildForWorkers } from '../strategies/fixtures/build.js';
import { spawnNode } from '../strategies/helpers.js';

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/lightclip.node');
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'backendLine.mjs');

describe('the backend line names the GEMM that runs', () => {
  it('for each BLAS and each built-in kernel', () => {
    expect(describeNativeBackend({ isa: 'avx2', blas: 'openblas', blasReason: null, threads: 2 })).toBe('lightclip native addon: OpenBLAS GEMM, AVX2 elementwise kernels, 2 threads');
    expect(describeNativeBackend({ isa: 'avx512', blas: 'mkl', blasReason: null, threads: 1 })).toMatch(/: MKL GEMM, AVX-512 elementwise kernels, 1 thread$/);
    expect(describeNativeBackend({ isa: 'avx2', blas: 'blis', blasReason: null, threads: 4 })).toMatch(/: BLIS GEMM,/);
    expect(describeNativeBackend({ isa: 'avx512', blas: null, blasReason: 'LIGHTCLIP_BLAS=none', threads: 2 })).toMatch(/: built-in AVX-512 GEMM kernel \(no BLAS: LIGHTCLIP_BLAS=none\),/);
    expect(describeNativeBackend({ isa: 'avx2', blas: null, blasReason: null, threads: 2 })).toMatch(/: built-in AVX2 GEMM kernel, AVX2/);
  });

  it('says "built-in", not OpenBLAS, in a process run with LIGHTCLIP_BLAS=none', async () => {
    if (!fs.existsSync(ADDON)) {
      console.log(`skipped: the native addon is not built (${ADDON}; npm install builds it)`);
      return;
    }
    const build = await buildForWorkers(['core']);
    const run = (blas: string): Promise<string> => {
      const child = spawnNode([FIXTURE], { LC_BUILD: build, LIGHTCLIP_BLAS: blas, LIGHTCLIP_NATIVE_PATH: ADDON, LIGHTCLIP_BACKEND: 'lightclip-cpu' });
      return child.exit.then((e) => {
        expect(e.code, child.err()).toBe(0);
        return child.out().split('\n').find((l) => l.startsWith('lightclip: backend')) ?? '';
      });
    };
    const none = await run('none');
    expect(none).toMatch(/^lightclip: backend lightclip-cpu \(lightclip native addon: built-in (AVX-512|AVX2|portable) GEMM kernel/);
    expect(none).not.toMatch(/OpenBLAS|MKL|BLIS/);
    // With the default search, the line names what was found (OpenBLAS where libopenblas0 is installed).
    const auto = await run('auto');
    console.log(`backend lines: LIGHTCLIP_BLAS=none: ${none}\n  auto: ${auto}`);
    expect(auto).toMatch(/^lightclip: backend lightclip-cpu \(lightclip native addon: (OpenBLAS|MKL|BLIS) GEMM|built-in .* GEMM kernel \(no BLAS: /);
  });
});
