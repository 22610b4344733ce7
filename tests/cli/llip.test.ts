import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as train } from '../../train.js';
import { main as evaluate } from '../../eval.js';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { tf } from '../../core/tf.js';
import { ensureDemoData } from '../../scripts/demoData.js';
import { writeSafetensors } from '../../core/checkpoint/safetensors.js';
import { seedEverything } from '../../core/random.js';
import { createClip } from '../../modules/clip/factory.js';
import { loadOpenClipPretrained } from '../../modules/clip/openClipPretrained.js';
import { ClipWrapper } from '../../modules/wrappers/clipWrapper.js';

let root: string;
let data: { train: string; zeroshot: string };

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-llip-'));
  data = await ensureDemoData(path.join(root, 'data'), { trainImages: 40, zeroshotPerClass: 1 });
});

const base = (batch = '8') => ['--folder', data.train, '--batch_size', batch, '--num_workers', '0', '--warmup_steps', '2', '--lr', '1e-3', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1'];

describe('train.ts --model llip and eval.ts zeroshot --model llip', () => {
  it('trains a tiny Llip with zero-shot evaluation, checkpoints it, and evaluates the checkpoint zero-shot', async () => {
    const trainer = await train(['--model', 'llip', '--num_mixture_tokens', '4', '--model_name', 'tiny-ViT', '--llip_temperature', '0.5', ...base(), '--max_steps', '3', '--zeroshot_data', data.zeroshot]);
    expect(trainer!.globalStep).toBe(3);
    const top1 = trainer!.callbackMetrics.zeroshot_top1!;
    expect(top1).toBeGreaterThanOrEqual(0);
    const last = path.join(trainer!.logDir, 'checkpoints', 'last.ckpt');
    const ckpt = await loadCheckpointFile(last);
    expect(Object.keys(ckpt.tensors)).toContain('state_dict.model.visual.mixture_tokens');
    expect(Object.keys(ckpt.tensors)).toContain('state_dict.model.mixture_attn.q_proj.weight');
    const hp = (ckpt.json as { hparams: Record<string, unknown> }).hparams;
    expect(hp.num_mixture_tokens).toBe(4);
    expect(hp.loss).toBe('siglip');
    expect(hp.llip_temperature).toBe(0.5);
    tf.dispose(Object.values(ckpt.tensors));
    const zs = (await evaluate(['zeroshot', '--weights', last, '--model', 'llip', '--num_mixture_tokens', '4', '--llip_temperature', '0.5', '--model_name', 'tiny-ViT', '--data', data.zeroshot, '--batch_size', '16'])) as { top1: number; count: number };
    expect(zs.count).toBe(24);
    // The callback evaluated the same weights on the same images after the last step.
    expect(zs.top1).toBeCloseTo(top1, 6);
    // Wrong K: a clear shape error naming the tensor.
    await expect(evaluate(['zeroshot', '--weights', last, '--model', 'llip', '--num_mixture_tokens', '5', '--model_name', 'tiny-ViT', '--data', data.zeroshot])).rejects.toThrow(/mixture_tokens/);
  }, 180_000);

  it('--config llip_tiny trains (a named recipe, flags override it)', async () => {
    const trainer = await train(['--config', 'llip_tiny', ...base(), '--max_steps', '2', '--num_mixture_tokens', '2']);
    expect(trainer!.globalStep).toBe(2);
    expect(trainer!.lightningModule.hparams.num_mixture_tokens).toBe(2);
    expect(trainer!.lightningModule.hparams.model).toBe('llip');
  }, 120_000);

  it('open_clip flags: --lock_image(_unlocked_groups) --lock_text --force_patch_dropout --wd --beta1 --beta2 --eps', async () => {
    const trainer = await train(['--model_name', 'tiny-ViT', ...base(), '--max_steps', '1', '--lock_image', '--lock_image_unlocked_groups', '1', '--lock_text', '--lock_text_unlocked_layers', '2', '--force_patch_dropout', '0.5', '--wd', '0.3', '--beta1', '0.8', '--beta2', '0.95', '--eps', '1e-7']);
    const m = trainer!.lightningModule as unknown as { model: { visual: { patchDropout: { prob: number } } }; namedParameters(): Array<[string, { requiresGrad: boolean }]> };
    const trainable = m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable.filter((n) => n.startsWith('model.visual.'))).toEqual(['model.visual.proj']);
    expect(trainable).toContain('model.text_projection');
    expect(trainable).toContain('model.transformer.resblocks.1.mlp.c_fc.weight');
    expect(trainable).not.toContain('model.transformer.resblocks.0.mlp.c_fc.weight');
    expect(m.model.visual.patchDropout.prob).toBe(0.5);
    // The optimizer the module builds (the Trainer's own was released at the end of fit).
    const opt = (trainer!.lightningModule.configureOptimizers() as unknown as { optimizer: { defaults?: Record<string, unknown>; paramGroups: Array<Record<string, unknown>> } }).optimizer;
    const g = opt.paramGroups[0]!;
    expect(g.betas ?? opt.defaults?.betas).toEqual([0.8, 0.95]);
    expect(g.eps ?? opt.defaults?.eps).toBe(1e-7);
    expect(opt.paramGroups.some((x) => x.weightDecay === 0.3)).toBe(true);
  }, 120_000);

  it('--accum_freq N runs one contrastive batch of N loader batches (gradient caching), --lr_scheduler const --grad_clip_norm', async () => {
    const trainer = await train(['--model_name', 'tiny-ViT', ...base('4'), '--accum_freq', '2', '--max_steps', '2', '--lr_scheduler', 'const', '--grad_clip_norm', '1']);
    const m = trainer!.lightningModule as unknown as { minibatchSize: number; hparams: Record<string, unknown> };
    expect(m.minibatchSize).toBe(4);
    expect(trainer!.globalStep).toBe(2);
    // const after a 2-step warmup: the lr of step 2 is the base lr.
    const cfg = trainer!.lightningModule.configureOptimizers() as unknown as { lrScheduler: { scheduler: { constructor: { name: string } } } };
    expect(cfg.lrScheduler.scheduler.constructor.name).toBe('OpenClipScheduler');
    await expect(train(['--model', 'llip', '--num_mixture_tokens', '2', '--model_name', 'tiny-ViT', ...base(), '--accum_freq', '2'])).rejects.toThrow(/--accum_freq/);
  }, 120_000);

  it('--pretrained loads open_clip-named weights (SigLIP logit_bias included); a missing file is named', async () => {
    seedEverything(9);
    const src = createClip('tiny-ViT');
    const sd = src.stateDict();
    const file = path.join(root, 'open_clip_model.safetensors');
    await writeSafetensors(file, { ...sd, logit_bias: tf.scalar(-7) });
    const w = new ClipWrapper(createClip('tiny-ViT'), { loss: 'siglip' });
    await loadOpenClipPretrained(w, file);
    const got = w.model.stateDict();
    for (const k of ['visual.conv1.weight', 'token_embedding.weight', 'text_projection', 'logit_scale']) expect(Array.from(got[k]!.dataSync()), k).toEqual(Array.from(sd[k]!.dataSync()));
    expect(w.stateDict()['loss.logit_bias']!.dataSync()[0]).toBe(-7);
    const notes: string[] = [];
    await loadOpenClipPretrained(new ClipWrapper(createClip('tiny-ViT')), file, (l) => notes.push(l));
    expect(notes.join()).toMatch(/logit_bias; ignored/);
    // The flag reaches it.
    await expect(train(['--model_name', 'tiny-ViT', ...base(), '--pretrained', path.join(root, 'nope.safetensors')])).rejects.toThrow(/--pretrained/);
  }, 120_000);

  it('needs --num_mixture_tokens', async () => {
    await expect(train(['--model', 'llip', '--model_name', 'tiny-ViT', ...base(), '--max_steps', '1'])).rejects.toThrow(/--num_mixture_tokens/);
    await expect(evaluate(['zeroshot', '--weights', 'x.ckpt', '--model', 'llip', '--model_name', 'tiny-ViT', '--data', data.zeroshot])).rejects.toThrow(/--num_mixture_tokens/);
  });

  it('--siglip trains a CLIP with the sigmoid loss (bias saved)', async () => {
    const trainer = await train(['--model_name', 'tiny-ViT', '--siglip', ...base(), '--max_steps', '2']);
    const ckpt = await loadCheckpointFile(path.join(trainer!.logDir, 'checkpoints', 'last.ckpt'));
    expect(Object.keys(ckpt.tensors)).toContain('state_dict.loss.logit_bias');
    expect((ckpt.json as { hparams: Record<string, unknown> }).hparams.loss).toBe('siglip');
    tf.dispose(Object.values(ckpt.tensors));
  }, 120_000);
});
