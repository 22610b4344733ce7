import { existsSync } from 'node:fs';
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
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `lightclip could not find its package root: no package.json at or above ${fileURLToPath(import.meta.url)}.`,
      );
    }
    dir = parent;
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
