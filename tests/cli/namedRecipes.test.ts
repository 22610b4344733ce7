import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { resolveConfig } from '../../core/config.js';
import { TrainConfig } from '../../train.js';
import { listRecipes, resolveRecipe } from '../../modules/recipes.js';

const parse = (argv: string[]) => {
  const r = resolveConfig(TrainConfig, argv, { resolveConfigName: resolveRecipe });
  if (r.help) throw new Error('help');
  return r.config;
};

describe('named run configs (--config llip_b16)', () => {
  it('ships the Llip, SigLIP, CLIP and tiny recipes', () => {
    for (const name of ['llip_b16', 'llip_b32', 'llip_l14', 'llip_tiny', 'siglip_b16', 'siglip_tiny', 'clip_b16', 'clip_l14', 'clip_tiny', 'clip-vit-b32']) expect(listRecipes()).toContain(name);
  });

  it('a bare name resolves to configs/recipes/<name>.yaml; flags override it', () => {
    expect(resolveRecipe('llip_b16')).toBe(path.resolve('configs/recipes/llip_b16.yaml'));
    const c = parse(['--config', 'llip_b16', '--folder', 'data/', '--num_mixture_tokens', '8']);
    expect(c.model).toBe('llip');
    expect(c.model_name).toBe('ViT-B/16');
    expect(c.num_mixture_tokens).toBe(8);
    expect(c.llip_loss).toBe('siglip');
    expect(parse(['--config', 'llip_b16', '--folder', 'd']).num_mixture_tokens).toBe(32);
    expect(parse(['--config', 'llip_l14', '--folder', 'd']).lr).toBe(4e-4);
    const s = parse(['--config', 'siglip_b16', '--folder', 'd']);
    expect(s.siglip).toBe(true);
    expect(s.model).toBeUndefined();
    expect(parse(['--config', 'clip_tiny', '--folder', 'd', '--siglip']).siglip).toBe(true);
  });

  it('paths still work, and an unknown name lists the recipes', () => {
    expect(parse(['--config', 'configs/recipes/clip_b16.yaml', '--folder', 'd']).model_name).toBe('ViT-B/16');
    expect(() => parse(['--config', 'llip_b99', '--folder', 'd'])).toThrow(/llip_b99.*Named recipes: .*llip_b16/);
    expect(() => parse(['--config', 'missing.yaml', '--folder', 'd'])).toThrow(/missing\.yaml/);
  });
});
