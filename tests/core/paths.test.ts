import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assetPath, configPath, packageRoot } from '../../core/paths.js';

describe('core/paths', () => {
  it('finds the lightclip package root by its package.json', () => {
    const root = packageRoot();
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
    expect(manifest.name).toBe('lightclip');
    expect(packageRoot()).toBe(root);
  });

  it('locates shipped assets and configs', () => {
    expect(existsSync(assetPath('clip', 'bpe_simple_vocab_16e6.txt.gz'))).toBe(true);
    expect(existsSync(assetPath('zeroshot', 'imagenet_classnames.json'))).toBe(true);
    expect(existsSync(configPath('ViT-B-32.json'))).toBe(true);
  });
});
