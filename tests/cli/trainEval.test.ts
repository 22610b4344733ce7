import { describe, expect, it, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';
import { main as evaluate } from '../../eval.js';
import { readSafetensors } from '../../core/checkpoint/safetensors.js';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { tf } from '../../core/tf.js';
import { ensureDemoData } from '../../scripts/demoData.js';

let root: string;
let data: { train: string; zeroshot: string };

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-cli-'));
  data = await ensureDemoData(path.join(root, 'data'), { trainImages: 40, zeroshotPerClass: 1 });
});

const base = (model = 'tiny-ViT') => ['--model_name', model, '--folder', data.train, '--batch_size', '8', '--num_workers', '0', '--warmup_steps', '2', '--lr', '1e-3', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1'];

describe('train.ts + eval.ts end to end (tiny-ViT)', () => {
  it('trains, logs, checkpoints, evaluates zero-shot, resumes, embeds', async () => {
    const trainer = await train([...base(), '--max_steps', '3', '--zeroshot_data', data.zeroshot]);
    expect(trainer!.globalStep).toBe(3);
    expect(trainer!.callbackMetrics.zeroshot_top1).toBeGreaterThanOrEqual(0);
    const ckptDir = path.join(trainer!.logDir, 'checkpoints');
    expect(fs.readdirSync(ckptDir)).toContain('last.ckpt');
    const ckpt = await loadCheckpointFile(path.join(ckptDir, 'last.ckpt'));
    expect(Object.keys(ckpt.tensors)).toContain('state_dict.model.visual.conv1.weight');
    expect((ckpt.json as { hparams: { model_name: string } }).hparams.model_name).toBe('tiny-ViT');
    tf.dispose(Object.values(ckpt.tensors));
    expect(fs.readdirSync(trainer!.logDir).some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
    expect(fs.readFileSync(path.join(trainer!.logDir, 'hparams.yaml'), 'utf8')).toContain('minibatch_size');

    // Resume from 'last' and train to step 5.
    const resumed = await train([...base(), '--max_steps', '5', '--resume', 'last']);
    expect(resumed!.globalStep).toBe(5);

    const last = path.join(resumed!.logDir, 'checkpoints', 'last.ckpt');
    const zs = (await evaluate(['zeroshot', '--weights', last, '--model_name', 'tiny-ViT', '--data', data.zeroshot, '--batch_size', '16'])) as { top1: number; top5: number; count: number };
    expect(zs.count).toBe(24);
    expect(zs.top5).toBeGreaterThanOrEqual(zs.top1);

    const texts = path.join(root, 'texts.txt');
    fs.writeFileSync(texts, 'a red circle\na blue cross\n\na green square\n');
    const out = path.join(root, 'emb.safetensors');
    await evaluate(['embed', '--weights', last, '--model_name', 'tiny-ViT', '--images', path.join(data.zeroshot, 'red_circle'), '--texts', texts, '--out', out]);
    const emb = await readSafetensors(out);
    expect(emb.tensors.image!.shape).toEqual([1, 32]);
    expect(emb.tensors.text!.shape).toEqual([3, 32]);
    const t = emb.tensors.text!.data as Float32Array;
    const norm = Math.hypot(...Array.from(t.subarray(0, 32)));
    expect(norm).toBeCloseTo(1, 4);
  });

  it('rejects bad input with the flag named', async () => {
    await expect(train(base('ViT-Z/99'))).rejects.toThrow(/ViT-Z\/99.*ViT-B\/32/s);
    await expect(train(['--model_name', 'tiny-ViT', '--folder', path.join(root, 'nope')])).rejects.toThrow(/--folder/);
    await expect(train([...base(), '--batch_size', 'abc'])).rejects.toThrow(/batch_size/);
    await expect(train([...base(), '--bogus', '1'])).rejects.toThrow(/bogus/);
    await expect(train([...base(), '--precision', '16'])).rejects.toThrow(/precision/);
    await expect(evaluate(['zeroshot', '--weights', path.join(root, 'missing.safetensors'), '--model_name', 'tiny-ViT', '--data', data.zeroshot])).rejects.toThrow(/--weights/);
    await expect(evaluate(['frobnicate'])).rejects.toThrow(/Unknown command/);
  });
});
