import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | null = null;

/**
 * The lightclip package root: the nearest directory at or above this file that holds a
 * `package.json`.
 *
 * Data files (`assets/`, `configs/`) live at the package root, but this module runs from
 * two depths: `core/paths.ts` under vitest and `dist/core/paths.js` after `tsc`. Walking up
 * to `package.json` finds the same root from both, where a fixed `../..` would not.
 *
 * @throws Error when no `package.json` is found (lightclip was copied without its manifest).
 */
export function packageRoot(): string {
  if (cachedRoot !== null) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  let nearest: string | null = null;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      nearest ??= dir;
      // A build directory may hold its own `{"type": "module"}` manifest: prefer lightclip's.
      if (manifestName(manifest) === 'lightclip') return (cachedRoot = dir);
    }
    const parent = dirname(dir);
    if (parent === dir) {
      if (nearest !== null) return (cachedRoot = nearest);
      throw new Error(
        `lightclip could not find its package root: no package.json at or above ${fileURLToPath(import.meta.url)}.`,
      );
    }
    dir = parent;
  }
}

function manifestName(file: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' && 'name' in parsed && typeof parsed.name === 'string' ? parsed.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Absolute path of a file shipped under `assets/`, e.g.
 * `assetPath('clip', 'bpe_simple_vocab_16e6.txt.gz')`.
 */
export function assetPath(...parts: string[]): string {
  return join(packageRoot(), 'assets', ...parts);
}

/** Absolute path of a file under the package's `configs/` folder (model JSONs, recipes). */
export function configPath(...parts: string[]): string {
  return join(packageRoot(), 'configs', ...parts);
}
