/**
 * Named run configs (Llip's `python -m llip.main llip_b16`): `--config llip_b16` is the
 * recipe file `configs/recipes/llip_b16.yaml` of the package; a value that names an existing
 * file, or has a path separator or a .yaml/.yml/.json extension, is a path as before.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { MisconfigurationError } from '../core/errors.js';
import { configPath } from '../core/paths.js';

/** The folder of the named recipes. */
export function recipesDir(): string {
  return configPath('recipes');
}

/** Names of the shipped recipes (file names without extension), sorted. */
export function listRecipes(): string[] {
  const dir = recipesDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .map((f) => f.replace(/\.(ya?ml|json)$/, ''))
    .sort();
}

/**
 * `--config` value → file path.
 * @throws MisconfigurationError for a bare name that is no shipped recipe, listing them.
 */
export function resolveRecipe(value: string): string {
  if (existsSync(value) || /[\\/]/.test(value) || /\.(ya?ml|json)$/.test(value)) return value;
  for (const ext of ['.yaml', '.yml', '.json']) {
    const file = path.join(recipesDir(), value + ext);
    if (existsSync(file)) return file;
  }
  throw new MisconfigurationError(`\`--config ${value}\`: no such file and no recipe of that name. Named recipes: ${listRecipes().join(', ') || '(none)'}; or pass a path to a .yaml/.json file.`);
}
