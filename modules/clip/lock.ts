/**
 * open_clip's tower locking (LiT, Zhai et al. 2022): `--lock_image [--lock_image_unlocked_groups N]
 * [--lock_image_freeze_bn_stats]` and `--lock_text [--lock_text_unlocked_layers N]
 * [--lock_text_freeze_layer_norm]`. Locked parameters get `requiresGrad = false`, so they
 * receive no gradient and the optimizer never touches them (not even weight decay).
 *
 * Groups, as open_clip's `VisionTransformer.lock` and `lock_text_transformer`, first to last:
 *  - ViT: [conv1, class_embedding, positional_embedding, ln_pre], each resblock but the last,
 *    [last resblock, ln_post], proj. The last N groups stay trainable.
 *  - text: [token_embedding, positional_embedding], each resblock but the last,
 *    [last resblock, ln_final], text_projection. The last N groups stay trainable.
 *  - ModifiedResNet: no partial unlocking (open_clip asserts N = 0); `freeze_bn_stats` makes
 *    every BatchNorm use its running statistics and never update them (FrozenBatchNorm2d).
 * Differences from open_clip, on purpose: with N = 0 the text tower is fully locked (the
 * open_clip version read unlocks `groups[-0:]`, i.e. everything); `freeze_layer_norm` false
 * (the default, as open_clip's store_true flag) keeps the LayerNorms of locked text layers
 * trainable, as open_clip's HF text lock does.
 */
import { MisconfigurationError, showValue } from '../../core/errors.js';
import { BatchNormBase, LayerNorm, Module, type Parameter } from '../../core/nn/index.js';
import type { TextTowerParts } from './textTransformer.js';
import type { Transformer } from './transformer.js';
import { VisionTransformer } from './vit.js';

type Group = Array<Module | Parameter>;

function paramsOf(g: Group): Parameter[] {
  return g.flatMap((x) => (x instanceof Module ? x.parameters() : [x]));
}

function checkCount(n: number, flag: string, max: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new MisconfigurationError(`\`${flag}\` must be an integer ≥ 0, got ${showValue(n)}.`);
  if (n > max) throw new MisconfigurationError(`\`${flag}\` is ${n} but the tower has only ${max} groups.`);
}

function towerGroups(first: Group, transformer: Transformer, lastExtra: Group, final: Group): Group[] {
  const blocks = [...transformer.resblocks];
  return [first, ...blocks.slice(0, -1).map((b) => [b] as Group), [...blocks.slice(-1), ...lastExtra], final];
}

/** The ViT's lock groups (first to last). */
export function visionGroups(v: VisionTransformer): Group[] {
  return towerGroups([v.conv1, v.classEmbedding, v.positionalEmbedding, v.lnPre], v.transformer, [v.lnPost], [v.proj]);
}

/** The CLIP text tower's lock groups (first to last). */
export function textGroups(t: TextTowerParts): Group[] {
  return towerGroups([t.tokenEmbedding, t.positionalEmbedding], t.transformer, [t.lnFinal], [t.textProjection]);
}

/** Makes a BatchNorm use and keep its running statistics whatever the mode (FrozenBatchNorm2d). */
export function freezeBatchNorm(m: Module): number {
  let count = 0;
  for (const [, sub] of m.namedModules()) {
    if (!(sub instanceof BatchNormBase)) continue;
    Object.defineProperty(sub, 'training', { get: () => false, set: () => {}, configurable: true });
    count++;
  }
  return count;
}

/** open_clip's `lock_image_tower`. */
export function lockImageTower(visual: Module, options: { unlockedGroups?: number; freezeBnStats?: boolean } = {}): void {
  const n = options.unlockedGroups ?? 0;
  for (const p of visual.parameters()) p.requiresGrad = false;
  if (visual instanceof VisionTransformer) {
    const groups = visionGroups(visual);
    checkCount(n, '--lock_image_unlocked_groups', groups.length);
    if (n > 0) for (const p of groups.slice(-n).flatMap(paramsOf)) p.requiresGrad = true;
  } else if (n !== 0) {
    throw new MisconfigurationError(`\`--lock_image_unlocked_groups\` ${n}: partial locking is only supported for ViT image towers (open_clip's ModifiedResNet asserts 0 too).`);
  }
  if (options.freezeBnStats) freezeBatchNorm(visual);
}

/** open_clip's `lock_text_tower` for the CLIP text transformer. */
export function lockTextTower(text: TextTowerParts, options: { unlockedLayers?: number; freezeLayerNorm?: boolean } = {}): void {
  const n = options.unlockedLayers ?? 0;
  const groups = textGroups(text);
  checkCount(n, '--lock_text_unlocked_layers', groups.length);
  for (const p of groups.flatMap(paramsOf)) p.requiresGrad = false;
  if (n > 0) for (const p of groups.slice(-n).flatMap(paramsOf)) p.requiresGrad = true;
  if (!options.freezeLayerNorm) {
    for (const g of groups) {
      for (const x of g) {
        if (!(x instanceof Module)) continue;
        for (const [, sub] of x.namedModules()) if (sub instanceof LayerNorm) for (const p of sub.parameters()) p.requiresGrad = true;
      }
    }
  }
}
