import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { ArrayDataLoader } from '../../../core/data.js';
import { Trainer } from '../../../core/trainer.js';
import { seedEverything } from '../../../core/random.js';
import { createClip } from '../../../modules/clip/factory.js';
import { PatchDropout } from '../../../modules/clip/patchDropout.js';
import { lockImageTower, lockTextTower } from '../../../modules/clip/lock.js';
import { VisionTransformer } from '../../../modules/clip/vit.js';
import { ModifiedResNet } from '../../../modules/clip/modifiedResnet.js';
import { ClipWrapper } from '../../../modules/wrappers/clipWrapper.js';
import type { Module } from '../../../core/nn/module.js';

describe('--force_patch_dropout', () => {
  it('keeps the class token first and max(1, ⌊(1−P)·N⌋) distinct patches in order, per image; identity in eval', () => {
    // tokens[b, t, :] = 100·b + t, so every row says where it came from.
    const [b, n, w] = [3, 10, 4];
    const vals = Array.from({ length: b }, (_, i) => Array.from({ length: n + 1 }, (_, t) => new Array(w).fill(100 * i + t)));
    const tokens = tf.tensor3d(vals);
    for (const [p, keep] of [[0.3, 7], [0.5, 5], [0.95, 1], [0.05, 9]] as const) {
      seedEverything(1);
      const out = new PatchDropout(p).apply(tokens, true);
      expect(out.shape).toEqual([b, 1 + keep, w]);
      const o = out.arraySync() as number[][][];
      o.forEach((rows, i) => {
        expect(rows[0]![0]).toBe(100 * i); // the class token, first
        const ids = rows.slice(1).map((r) => r[0]! - 100 * i);
        expect(ids.every((t) => t >= 1 && t <= n)).toBe(true);
        expect([...ids].sort((x, y) => x - y)).toEqual(ids);
        expect(new Set(ids).size).toBe(keep);
        rows.forEach((r) => expect(new Set(r).size).toBe(1));
      });
    }
    seedEverything(2);
    const o = new PatchDropout(0.5).apply(tokens, true).arraySync() as number[][][];
    const kept = o.map((rows, i) => rows.slice(1).map((r) => r[0]! - 100 * i).join(','));
    expect(new Set(kept).size).toBeGreaterThan(1); // a different subset per image
    expect(new PatchDropout(0.5).apply(tokens, false)).toBe(tokens);
    expect(() => new PatchDropout(1)).toThrow(/--force_patch_dropout/);
  });

  it('the CLIP ViT drops patches in training only', () => {
    seedEverything(3);
    const m = createClip('tiny-ViT');
    const v = m.visual as VisionTransformer;
    v.patchDropout = new PatchDropout(0.5);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1);
    m.eval();
    const a = m.encodeImage(x).dataSync();
    const a2 = m.encodeImage(x).dataSync();
    expect(Array.from(a2)).toEqual(Array.from(a));
    m.train();
    const c = m.encodeImage(x).dataSync();
    expect(Math.max(...Array.from(c).map((v2, i) => Math.abs(v2 - a[i]!)))).toBeGreaterThan(1e-4);
  });
});

function snapshot(m: Module): Map<string, Float32Array> {
  return new Map(m.namedParameters().map(([n, p]) => [n, Float32Array.from(p.variable.dataSync() as Float32Array)]));
}

function changed(before: Map<string, Float32Array>, m: Module): Set<string> {
  const out = new Set<string>();
  for (const [n, p] of m.namedParameters()) {
    const a = before.get(n)!;
    const b = p.variable.dataSync();
    if (a.some((v, i) => v !== b[i])) out.add(n);
  }
  return out;
}

async function trainSteps(model: ClipWrapper, size: number, steps: number): Promise<void> {
  const data = { images: tf.randomNormal([16, size, size, 3], 0, 1, 'float32', 4), texts: tf.concat([tf.fill([16, 1], 49406, 'int32'), tf.randomUniform([16, 3], 1, 400, 'int32', 5), tf.fill([16, 1], 49407, 'int32')], 1) };
  await new Trainer({ maxSteps: steps, logger: false, enableProgressBar: false, enableCheckpointing: false }).fit(model, { train: new ArrayDataLoader(data, { batchSize: 8 }) });
}

describe('--lock_image / --lock_text', () => {
  it('ViT: the last N groups train, every locked parameter stays exactly as it was (weight decay included)', async () => {
    seedEverything(4);
    const clip = createClip('tiny-ViT');
    lockImageTower(clip.visual, { unlockedGroups: 2 }); // tiny-ViT has 2 blocks: groups = [stem], [block 0], [block 1, ln_post], [proj]
    const w = new ClipWrapper(clip, { lr: 1e-2, warmupSteps: 0, weightDecay: 0.5 });
    const before = snapshot(w);
    await trainSteps(w, 32, 3);
    const moved = changed(before, w);
    const visual = [...before.keys()].filter((k) => k.startsWith('model.visual.'));
    for (const k of visual) {
      const trainable = k.startsWith('model.visual.transformer.resblocks.1.') || k.startsWith('model.visual.ln_post.') || k === 'model.visual.proj';
      expect(moved.has(k), k).toBe(trainable);
    }
    expect(moved.has('model.token_embedding.weight')).toBe(true);
    expect(() => lockImageTower(createClip('tiny-ViT').visual, { unlockedGroups: 5 })).toThrow(/--lock_image_unlocked_groups/);
  }, 60_000);

  it('text: the last N groups train; LayerNorms of locked layers train unless --lock_text_freeze_layer_norm', async () => {
    seedEverything(5);
    const clip = createClip('tiny-ViT');
    lockTextTower(clip, { unlockedLayers: 1 }); // only text_projection…
    const trainable = new Set(clip.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n));
    expect(trainable.has('text_projection')).toBe(true);
    expect(trainable.has('transformer.resblocks.1.attn.in_proj_weight')).toBe(false);
    expect(trainable.has('transformer.resblocks.0.ln_1.weight')).toBe(true); // …plus LayerNorms (freeze_layer_norm off)
    expect(trainable.has('ln_final.bias')).toBe(true);
    expect(trainable.has('token_embedding.weight')).toBe(false);
    const frozenLn = createClip('tiny-ViT');
    lockTextTower(frozenLn, { unlockedLayers: 2, freezeLayerNorm: true });
    const t2 = new Set(frozenLn.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n));
    expect(t2.has('transformer.resblocks.0.ln_1.weight')).toBe(false);
    expect(t2.has('transformer.resblocks.1.ln_1.weight')).toBe(true);
    expect(t2.has('ln_final.weight')).toBe(true);
    expect(t2.has('visual.proj')).toBe(true); // the image tower is untouched
    const w = new ClipWrapper(frozenLn, { lr: 1e-2, warmupSteps: 0, weightDecay: 0.5 });
    const before = snapshot(w);
    await trainSteps(w, 32, 2);
    const moved = changed(before, w);
    for (const [n, p] of w.namedParameters()) if (n.startsWith('model.') && !n.startsWith('model.visual.') && n !== 'model.logit_scale') expect(moved.has(n), n).toBe(p.requiresGrad);
  }, 60_000);

  it('ResNet with --lock_image_freeze_bn_stats: no parameter or running statistic moves, BatchNorm normalises with running stats', async () => {
    seedEverything(6);
    const clip = createClip('tiny-RN');
    expect(() => lockImageTower(clip.visual, { unlockedGroups: 1 })).toThrow(/only supported for ViT/);
    lockImageTower(clip.visual, { freezeBnStats: true });
    const rn = clip.visual as ModifiedResNet;
    const buffers = () => rn.namedBuffers().map(([n, b]) => [n, Array.from(b.dataSync())] as const);
    const b0 = buffers();
    const w = new ClipWrapper(clip, { lr: 1e-2, warmupSteps: 0, resnet: true });
    const before = snapshot(w);
    await trainSteps(w, clip.imageSize, 2);
    const moved = changed(before, w);
    for (const k of before.keys()) if (k.startsWith('model.visual.')) expect(moved.has(k), k).toBe(false);
    expect(buffers()).toEqual(b0);
  }, 120_000);
});
