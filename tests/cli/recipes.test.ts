import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveConfig } from '../../core/config.js';
import { TrainConfig } from '../../train.js';
import { resolveModelConfig } from '../../modules/clip/config.js';

const dir = path.resolve('configs/recipes');

describe('configs/recipes', () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  it('has recipes', () => expect(files.length).toBeGreaterThanOrEqual(2));
  for (const f of files) {
    it(`${f} is a valid train.ts config`, () => {
      const r = resolveConfig(TrainConfig, ['--config', path.join(dir, f), '--folder', 'data/']);
      expect(r.help).toBe(false);
      if (r.help) return;
      expect(r.config.folder).toBe('data/');
      if (!r.config.image_encoder) expect(() => resolveModelConfig(r.config.model_name)).not.toThrow();
      else expect(r.config.text_encoder).toBeTruthy();
    });
  }
});
