import ts from 'typescript';
import { defineConfig, type Plugin } from 'vitest/config';

/**
 * Tests are compiled by TypeScript's own `transpileModule`, with the project's decorator
 * settings, so decorator metadata (`design:type`, read by tsyringe and class-transformer) is
 * emitted exactly as `tsc` emits it for the CLIs. Vite's default transform (oxc/esbuild)
 * does not emit decorator metadata; SWC would, but its platform binaries are optional
 * packages that not every npm mirror carries, which breaks `npm ci`.
 */
function typescriptTranspile(): Plugin {
  return {
    name: 'lightclip:typescript-transpile',
    enforce: 'pre',
    transform(code, id) {
      if (!/\.(ts|mts|cts)$/.test(id) || id.includes('/node_modules/')) return null;
      const out = ts.transpileModule(code, {
        fileName: id,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          useDefineForClassFields: false,
          sourceMap: true,
          inlineSources: true,
        },
      });
      return { code: out.outputText, map: out.sourceMapText ? JSON.parse(out.sourceMapText) : null };
    },
  };
}

export default defineConfig({
  plugins: [typescriptTranspile()],
  // The plugin has already turned TypeScript into JavaScript.
  oxc: false,
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // 2 cores in CI: two test files at a time.
    maxWorkers: 2,
  },
});
