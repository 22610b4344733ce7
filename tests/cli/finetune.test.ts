import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { tf } from '../../core/tf.js';
import { ensureDemoData } from '../../scripts/demoData.js';
import { TINY_BERT, bertSpec, randomRaw, writeModelDir } from '../modules/text/fixtures.js';
import { WORDPIECE_JSON } from '../modules/text/tokenizerFixtures.js';

describe('train.ts fine-tuning path (train-CLIP train_finetune.py)', () => {
  it('trains resnet18 + a local HF BERT with gradient caching and self-distillation, from flags and from YAML', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-ft-'));
    const data = await ensureDemoData(path.join(root, 'data'), { trainImages: 16, zeroshotPerClass: 1 });
    const bert = await writeModelDir(path.join(root, 'bert'), TINY_BERT, randomRaw(bertSpec(TINY_BERT), 3));
    fs.writeFileSync(path.join(bert, 'tokenizer.json'), JSON.stringify(WORDPIECE_JSON));
    const flags = ['--folder', data.train, '--image_encoder', 'resnet18', '--text_encoder', bert, '--image_size', '32', '--context_length', '10',
      '--batch_size', '8', '--minibatch_size', '4', '--num_workers', '0', '--max_steps', '4', '--warmup_steps', '1', '--lr', '3e-3',
      '--self_distillation', '--kl_coeff', '1.0', '--avg_word_embs', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1'];
    const trainer = await train(flags);
    expect(trainer!.globalStep).toBe(4);
    const metrics = fs.readFileSync(path.join(trainer!.logDir, 'hparams.yaml'), 'utf8');
    expect(metrics).toContain('self_distillation: true');
    const ckpt = await loadCheckpointFile(path.join(trainer!.logDir, 'checkpoints', 'last.ckpt'));
    const names = Object.keys(ckpt.tensors);
    expect(names).toContain('state_dict.teacher.transformer.encoder.layer.0.attention.self.query.weight');
    expect(names).toContain('state_dict.model.visual.layer1.0.conv1.weight');
    expect(names).toContain('state_dict.sink_temp');
    tf.dispose(Object.values(ckpt.tensors));
    expect(Number.isFinite(trainer!.callbackMetrics.train_loss!)).toBe(true);

    const yaml = path.join(root, 'finetune.yaml');
    fs.writeFileSync(yaml, [`folder: ${data.train}`, 'image_encoder: resnet18', `text_encoder: ${bert}`, 'image_size: 32', 'context_length: 10', 'batch_size: 8',
      'minibatch_size: 4', 'num_workers: 0', 'max_steps: 2', 'self_distillation: true', 'kl_coeff: 0.5', 'progress_bar: false', `default_root_dir: ${root}`].join('\n'));
    const t2 = await train(['--config', yaml]);
    expect(t2!.globalStep).toBe(2);
    expect(t2!.lightningModule.hparams.kl_coeff).toBe(0.5);
  });

  it('names the missing half of the fine-tuning pair', async () => {
    await expect(train(['--folder', '.', '--image_encoder', 'resnet50'])).rejects.toThrow(/--text_encoder/);
    await expect(train(['--folder', '.', '--image_encoder', 'resnet7', '--text_encoder', 'x'])).rejects.toThrow(/image_encoder/);
  });
});
