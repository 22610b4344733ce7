import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';

describe('train.ts --model / --datamodule (registered by name)', () => {
  it('imports a user module and trains its registered model on its registered datamodule', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-reg-'));
    const trainer = await train([
      '--import', path.resolve('tests/cli/fixtures/xorModule.mjs'),
      '--model', 'xor_mlp', '--model_args', '{"hidden": 16, "lr": 0.05}',
      '--datamodule', 'xor_data', '--datamodule_args', '{"repeat": 4}',
      '--max_epochs', '150', '--no-progress_bar', '--default_root_dir', root,
    ]);
    expect(trainer!.lightningModule.hparams).toEqual({ hidden: 16, lr: 0.05 });
    expect(trainer!.globalStep).toBe(300);
    expect(trainer!.callbackMetrics.train_loss).toBeLessThan(0.1);
  });

  it('names unknown models and bad JSON', async () => {
    await expect(train(['--model', 'nope', '--datamodule', 'xor_data', '--import', path.resolve('tests/cli/fixtures/xorModule.mjs')])).rejects.toThrow(/--model=nope.*xor_mlp/);
    await expect(train(['--model', 'xor_mlp', '--model_args', '{oops', '--datamodule', 'xor_data', '--import', path.resolve('tests/cli/fixtures/xorModule.mjs')])).rejects.toThrow(/--model_args/);
  });
});
