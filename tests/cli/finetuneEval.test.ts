import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';
import { main as evaluate } from '../../eval.js';
import { readSafetensors } from '../../core/checkpoint/safetensors.js';
import { ensureDemoData } from '../../scripts/demoData.js';
import { TINY_BERT, bertSpec, randomRaw, writeModelDir } from '../modules/text/fixtures.js';
import { WORDPIECE_JSON } from '../modules/text/tokenizerFixtures.js';

describe('fine-tuned (CustomClipWrapper) models: text length, zero-shot, eval', () => {
  it('truncates to the BERT positions, runs --zeroshot_data with --text_encoder, and eval.ts zeroshot|embed read the .ckpt', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-fteval-'));
    const data = await ensureDemoData(path.join(root, 'data'), { trainImages: 16, zeroshotPerClass: 1 });
    expect(TINY_BERT.max_position_embeddings).toBe(12);
    const bert = await writeModelDir(path.join(root, 'bert'), TINY_BERT, randomRaw(bertSpec(TINY_BERT), 3));
    fs.writeFileSync(path.join(bert, 'tokenizer.json'), JSON.stringify(WORDPIECE_JSON));
    // No --context_length: the default 77 exceeds the 12 positions of this BERT.
    const trainer = await train(['--folder', data.train, '--image_encoder', 'resnet18', '--text_encoder', bert, '--image_size', '32', '--batch_size', '8',
      '--num_workers', '0', '--max_steps', '2', '--warmup_steps', '1', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1',
      '--zeroshot_data', data.zeroshot]);
    expect(trainer!.globalStep).toBe(2);
    expect(trainer!.lightningModule.hparams.context_length).toBe(12);
    const top1 = trainer!.callbackMetrics.zeroshot_top1;
    expect(top1).toBeGreaterThanOrEqual(0);
    expect(top1).toBeLessThanOrEqual(1);

    const ckpt = path.join(trainer!.logDir, 'checkpoints', 'last.ckpt');
    const zs = (await evaluate(['zeroshot', '--weights', ckpt, '--data', data.zeroshot, '--batch_size', '16'])) as { top1: number; count: number };
    expect(zs.count).toBe(24);
    // The same weights and data as the callback's last evaluation: the same accuracy.
    expect(zs.top1).toBeCloseTo(top1!, 6);

    const texts = path.join(root, 'texts.txt');
    fs.writeFileSync(texts, 'a red circle\na blue cross drawn on a white background with a very long caption that needs truncation\n');
    const out = path.join(root, 'emb.safetensors');
    await evaluate(['embed', '--weights', ckpt, '--images', path.join(data.zeroshot, 'red_circle'), '--texts', texts, '--out', out]);
    const emb = await readSafetensors(out);
    const dim = TINY_BERT.hidden_size; // embed_dim defaults to the text hidden size
    expect(emb.tensors.image!.shape).toEqual([1, dim]);
    expect(emb.tensors.text!.shape).toEqual([2, dim]);
    fs.rmSync(root, { recursive: true, force: true });
  });
});
