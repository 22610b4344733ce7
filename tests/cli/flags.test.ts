import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';
import { ImageTextFolderDataModule } from '../../datamodules/folder.js';
import { ensureDemoData } from '../../scripts/demoData.js';

let root: string;
let data: { train: string; zeroshot: string };

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-flags-'));
  data = await ensureDemoData(path.join(root, 'data'), { trainImages: 24, zeroshotPerClass: 1 });
});

const base = (): string[] => ['--model_name', 'tiny-ViT', '--folder', data.train, '--batch_size', '4', '--num_workers', '0', '--warmup_steps', '1', '--default_root_dir', root, '--log_every_n_steps', '1'];

describe('train.ts flags', () => {
  it('--val_folder works on its own; Lightning Trainer flags and train-CLIP data flags reach the Trainer and datamodule', async () => {
    const trainer = await train([
      ...base(),
      '--val_folder', data.train,
      '--max_steps', '2',
      '--progress_bar', 'false',
      '--limit_train_batches', '2',
      '--limit_val_batches', '1',
      '--check_val_every_n_epoch', '1',
      '--val_check_interval', '0.5',
      '--resize_ratio', '0.5',
      '--shuffle=false',
    ]);
    expect(trainer!.globalStep).toBe(2);
    const o = trainer!.options;
    expect([o.limitTrainBatches, o.limitValBatches, o.valCheckInterval, o.checkValEveryNEpoch, o.enableProgressBar]).toEqual([2, 1, 0.5, 1, false]);
    expect(trainer!.callbacks.some((cb) => cb.constructor.name === 'ProgressBar')).toBe(false);
    const dm = trainer!.datamodule as ImageTextFolderDataModule;
    const opts = (dm as unknown as { opts: { resizeRatio: number; shuffle: boolean; valFolder?: string } }).opts;
    expect([opts.resizeRatio, opts.shuffle, opts.valFolder]).toEqual([0.5, false, data.train]);
    expect(trainer!.valDataloader).not.toBeNull();
  });

  it('passes --accumulate_grad_batches and gradient clipping to the Trainer, and rejects a bad algorithm', async () => {
    await expect(train([...base(), '--gradient_clip_algorithm', 'l3'])).rejects.toThrow(/gradient_clip_algorithm/);
    await expect(train([...base(), '--val_folder', data.train, '--val_fraction', '0.2'])).rejects.toThrow(/exclude each other/);
    const trainer = await train([...base(), '--max_steps', '1', '--no-progress_bar', '--gradient_clip_val', '0.5', '--gradient_clip_algorithm', 'value', '--accumulate_grad_batches', '2']);
    const o = trainer!.options;
    expect([o.gradientClipVal, o.gradientClipAlgorithm, o.accumulateGradBatches]).toEqual([0.5, 'value', 2]);
  });
});
