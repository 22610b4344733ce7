import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../../core/errors.js';
import {
  addModelConfig, clipStateDictShapes, getModelConfig, isResNetConfig, listModels, modelNameToFile, parseClipConfig,
  resolveModelConfig, type ClipConfig,
} from '../../../modules/clip/config.js';

const OPENAI = ['RN50', 'RN101', 'RN50x4', 'RN50x16', 'RN50x64', 'ViT-B/32', 'ViT-B/16', 'ViT-L/14', 'ViT-L/14-336px'];

function numel(shapes: Record<string, number[]>, keep: (key: string) => boolean = () => true): number {
  return Object.entries(shapes).filter(([k]) => keep(k)).reduce((sum, [, s]) => sum + s.reduce((a, b) => a * b, 1), 0);
}

const isBuffer = (key: string): boolean => /running_(mean|var)$|num_batches_tracked$/.test(key);

/** A flat OpenAI-form config for tests, with `patch` overrides. */
function flat(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    embed_dim: 512, image_resolution: 224, vision_layers: 12, vision_width: 768, vision_patch_size: 32,
    context_length: 77, vocab_size: 49408, transformer_width: 512, transformer_heads: 8, transformer_layers: 12, ...patch,
  };
}

describe('built-in model configs', () => {
  it('lists every --model_name of DESIGN.md §3 plus the tiny test configs, naturally sorted', () => {
    expect(listModels()).toEqual([
      'RN50', 'RN50x4', 'RN50x16', 'RN50x64', 'RN101', 'tiny-RN', 'tiny-ViT', 'ViT-B/16', 'ViT-B/32', 'ViT-L/14', 'ViT-L/14-336px',
    ]);
  });

  // DESIGN.md §3 table: embed, image res, vision layers, vision width, patch, text width/heads.
  it.each([
    ['RN50', 1024, 224, [3, 4, 6, 3], 64, null, 512, 8],
    ['RN101', 512, 224, [3, 4, 23, 3], 64, null, 512, 8],
    ['RN50x4', 640, 288, [4, 6, 10, 6], 80, null, 640, 10],
    ['RN50x16', 768, 384, [6, 8, 18, 8], 96, null, 768, 12],
    ['RN50x64', 1024, 448, [3, 15, 36, 10], 128, null, 1024, 16],
    ['ViT-B/32', 512, 224, 12, 768, 32, 512, 8],
    ['ViT-B/16', 512, 224, 12, 768, 16, 512, 8],
    ['ViT-L/14', 768, 224, 24, 1024, 14, 768, 12],
    ['ViT-L/14-336px', 768, 336, 24, 1024, 14, 768, 12],
  ] as const)('%s has the OpenAI shape', (name, embed, res, layers, width, patch, textWidth, textHeads) => {
    const cfg = getModelConfig(name);
    expect(cfg.embedDim).toBe(embed);
    expect(cfg.vision.imageSize).toBe(res);
    expect(cfg.vision.layers).toEqual(layers);
    expect(cfg.vision.width).toBe(width);
    expect(cfg.vision.patchSize).toBe(patch);
    // OpenAI: ViT heads = width / 64; ResNet attention-pool heads = width * 32 / 64.
    expect(cfg.vision.heads).toBe(patch === null ? (width * 32) / 64 : width / 64);
    expect(cfg.text).toEqual({ contextLength: 77, vocabSize: 49408, width: textWidth, heads: textHeads, layers: 12 });
    expect(cfg.quickGelu).toBe(true);
    expect(isResNetConfig(cfg)).toBe(patch === null);
  });

  it('has tiny configs for tests: a 2-head ViT and a [1,1,1,1] ResNet at 32 px', () => {
    const vit = getModelConfig('tiny-ViT');
    expect(vit.vision).toEqual({ imageSize: 32, layers: 2, width: 64, patchSize: 8, heads: 2 });
    expect(vit.text.contextLength).toBe(16);
    const rn = getModelConfig('tiny-RN');
    expect(rn.vision).toEqual({ imageSize: 32, layers: [1, 1, 1, 1], width: 8, patchSize: null, heads: 4 });
  });

  it('maps names to files with / as -, and finds a model by either spelling', () => {
    expect(modelNameToFile('ViT-B/32')).toBe('ViT-B-32.json');
    expect(modelNameToFile('ViT-L/14-336px')).toBe('ViT-L-14-336px.json');
    expect(modelNameToFile('RN50x4')).toBe('RN50x4.json');
    expect(getModelConfig('ViT-L-14-336px')).toEqual(getModelConfig('ViT-L/14-336px'));
  });

  it('returns a deep copy', () => {
    const cfg = getModelConfig('RN50');
    cfg.vision.width = 1;
    (cfg.vision.layers as number[])[0] = 99;
    expect(getModelConfig('RN50').vision.width).toBe(64);
    expect(getModelConfig('RN50').vision.layers).toEqual([3, 4, 6, 3]);
  });

  it('throws on an unknown name, listing the available ones', () => {
    expect(() => getModelConfig('ViT-Q/99')).toThrow(MisconfigurationError);
    expect(() => getModelConfig('ViT-Q/99')).toThrow(/`--model_name=ViT-Q\/99`\. Available: RN50, RN50x4, .*ViT-L\/14-336px\./);
  });
});

describe('parseClipConfig', () => {
  it('reads open_clip nested configs (quick_gelu defaults to false there)', () => {
    const nested = {
      embed_dim: 512,
      vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
    };
    const openai = getModelConfig('ViT-B/32');
    expect(parseClipConfig(nested, 'ViT-B-32.json')).toEqual({ ...openai, quickGelu: false });
    expect(parseClipConfig({ ...nested, quick_gelu: true })).toEqual(openai);
    const rn50 = {
      embed_dim: 1024, quick_gelu: true,
      vision_cfg: { image_size: 224, layers: [3, 4, 6, 3], width: 64, patch_size: null },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
    };
    expect(parseClipConfig(rn50)).toEqual(getModelConfig('RN50'));
    const narrowHeads = { ...nested, vision_cfg: { ...nested.vision_cfg, head_width: 32 } };
    expect(parseClipConfig(narrowHeads).vision.heads).toBe(24);
  });

  it('accepts flat vision_heads and quick_gelu overrides', () => {
    const cfg = parseClipConfig(flat({ vision_heads: 4, quick_gelu: false }));
    expect(cfg.vision.heads).toBe(4);
    expect(cfg.quickGelu).toBe(false);
  });

  it.each([
    ['an unknown key', flat({ transformer_head: 8 }), /Unknown key `transformer_head` in cfg\.json\. Allowed keys here: embed_dim, .*quick_gelu\./],
    ['a missing key', (() => { const f = flat(); delete f.vocab_size; return f; })(), /Missing key `vocab_size` in cfg\.json\./],
    ['a string width', flat({ vision_width: '768' }), /`vision_width` in cfg\.json must be a positive integer, got "768"\./],
    ['a fractional size', flat({ image_resolution: 224.5 }), /`image_resolution` in cfg\.json must be a positive integer, got 224\.5/],
    ['a 3-stage ResNet', flat({ vision_layers: [3, 4, 6], vision_patch_size: null }), /`vision_layers` .* list of 4 positive integers/],
    ['a ViT without patch size', flat({ vision_patch_size: null }), /`vision_patch_size` in cfg\.json must be a positive integer for a ViT/],
    ['a ResNet with a patch size', flat({ vision_layers: [3, 4, 6, 3] }), /`vision_patch_size` in cfg\.json must be null for a ResNet/],
    ['a patch that does not tile the image', flat({ vision_patch_size: 30 }), /Image size 224 in cfg\.json must be a multiple of the patch size 30/],
    ['a ResNet size not a multiple of 32', flat({ vision_layers: [1, 1, 1, 1], vision_patch_size: null, image_resolution: 100 }), /multiple of 32/],
    ['text heads that do not split the width', flat({ transformer_heads: 7 }), /Text width 512 in cfg\.json must be a multiple of its 7 heads/],
    ['a vision width without whole 64-wide heads', flat({ vision_width: 96 }), /set `vision_heads`/],
    ['a non-boolean quick_gelu', flat({ quick_gelu: 'yes' }), /`quick_gelu` in cfg\.json must be true or false, got "yes"/],
    ['an unknown nested key', {
      embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32, mlp_ratio: 4 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
    }, /Unknown key `vision_cfg\.mlp_ratio` in cfg\.json\. Allowed keys here: image_size, layers, width, patch_size, head_width\./],
    ['a nested section that is not an object', { embed_dim: 512, vision_cfg: 3, text_cfg: {} }, /`vision_cfg` in cfg\.json must be a JSON object, got 3/],
    ['a non-object', [1, 2], /A model config in cfg\.json must be a JSON object/],
  ])('rejects %s, naming the file and key', (_what, raw, message) => {
    expect(() => parseClipConfig(raw, 'cfg.json')).toThrow(MisconfigurationError);
    expect(() => parseClipConfig(raw, 'cfg.json')).toThrow(message);
  });
});

describe('addModelConfig / resolveModelConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lightclip-configs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  it('registers a file under its name and a folder of files', () => {
    const file = write('my-model.json', flat({ embed_dim: 256 }));
    expect(addModelConfig(file)).toEqual(['my-model']);
    expect(getModelConfig('my-model').embedDim).toBe(256);
    const sub = join(dir, 'more');
    mkdirSync(sub);
    writeFileSync(join(sub, 'ViT-T-8.json'), JSON.stringify(flat({ image_resolution: 64, vision_patch_size: 8 })));
    expect(addModelConfig(sub)).toEqual(['ViT-T/8']);
    expect(listModels()).toContain('ViT-T/8');
    expect(getModelConfig('ViT-T/8').vision.patchSize).toBe(8);
  });

  it('rejects missing paths and invalid files, naming them', () => {
    expect(() => addModelConfig(join(dir, 'absent'))).toThrow(/Model config path ".*absent" does not exist/);
    const broken = write('broken.json', '{ "embed_dim": ');
    expect(() => addModelConfig(broken)).toThrow(/Model config .*broken\.json is not valid JSON/);
    const bad = write('bad.json', flat({ vision_width: -1 }));
    expect(() => addModelConfig(bad)).toThrow(/`vision_width` in .*bad\.json must be a positive integer, got -1/);
  });

  it('resolves a --model_name or a path to a JSON file', () => {
    expect(resolveModelConfig('ViT-B/32')).toEqual(getModelConfig('ViT-B/32'));
    const file = write('custom.json', flat({ embed_dim: 128 }));
    expect(resolveModelConfig(file).embedDim).toBe(128);
    expect(() => resolveModelConfig(join(dir, 'missing.json'))).toThrow(/`--model_name` config file ".*missing\.json" does not exist/);
    expect(() => resolveModelConfig('RN42')).toThrow(/Unknown model name `--model_name=RN42`\. Available: .*A path to a JSON config file is also accepted/);
  });
});

/** ViT parameter count from the architecture: conv, class/pos embeddings, LNs, blocks, proj. */
function vitParams(cfg: ClipConfig): number {
  const w = cfg.vision.width;
  const p = cfg.vision.patchSize!;
  const grid = cfg.vision.imageSize / p;
  // A pre-LN block: qkv 3w²+3w, out w²+w, two LNs 4w, MLP 4w²+4w and 4w²+w.
  const block = 12 * w * w + 13 * w;
  return w * 3 * p * p + w + (grid * grid + 1) * w + 4 * w + (cfg.vision.layers as number) * block + w * cfg.embedDim;
}

/** ModifiedResNet learnable parameters (BatchNorm: weight and bias only). */
function resnetParams(cfg: ClipConfig): number {
  const w = cfg.vision.width;
  const bn = (c: number): number => 2 * c;
  let n = 27 * (w / 2) + bn(w / 2) + 9 * (w / 2) * (w / 2) + bn(w / 2) + 9 * (w / 2) * w + bn(w);
  let inplanes = w;
  (cfg.vision.layers as number[]).forEach((blocks, k) => {
    const planes = w * 2 ** k;
    for (let m = 0; m < blocks; m++) {
      n += inplanes * planes + bn(planes) + 9 * planes * planes + bn(planes) + planes * 4 * planes + bn(4 * planes);
      if (m === 0) n += inplanes * 4 * planes + bn(4 * planes);
      inplanes = 4 * planes;
    }
  });
  const e = 32 * w;
  const s = cfg.vision.imageSize / 32;
  return n + (s * s + 1) * e + 3 * (e * e + e) + e * cfg.embedDim + cfg.embedDim;
}

function textParams(cfg: ClipConfig): number {
  const t = cfg.text;
  const block = 12 * t.width * t.width + 13 * t.width;
  return t.vocabSize * t.width + t.contextLength * t.width + t.layers * block + 2 * t.width + t.width * cfg.embedDim + 1;
}

describe('clipStateDictShapes', () => {
  it('starts in PyTorch order: CLIP own parameters, then visual', () => {
    const keys = Object.keys(clipStateDictShapes(getModelConfig('ViT-B/32')));
    expect(keys.slice(0, 8)).toEqual([
      'positional_embedding', 'text_projection', 'logit_scale', 'visual.class_embedding', 'visual.positional_embedding',
      'visual.proj', 'visual.conv1.weight', 'visual.ln_pre.weight',
    ]);
    expect(keys.slice(-3)).toEqual(['token_embedding.weight', 'ln_final.weight', 'ln_final.bias']);
  });

  it('gives ViT-B/32 the shapes and 151,277,313 parameters of OpenAI (notebooks/Interacting_with_CLIP.ipynb)', () => {
    const s = clipStateDictShapes(getModelConfig('ViT-B/32'));
    expect(s['visual.conv1.weight']).toEqual([768, 3, 32, 32]);
    expect(s['visual.positional_embedding']).toEqual([50, 768]);
    expect(s['visual.proj']).toEqual([768, 512]);
    expect(s['visual.transformer.resblocks.11.attn.in_proj_weight']).toEqual([2304, 768]);
    expect(s['visual.transformer.resblocks.0.mlp.c_fc.weight']).toEqual([3072, 768]);
    expect(s['visual.transformer.resblocks.0.mlp.c_proj.weight']).toEqual([768, 3072]);
    expect(s['transformer.resblocks.11.attn.out_proj.bias']).toEqual([512]);
    expect(s['visual.transformer.resblocks.12.ln_1.weight']).toBeUndefined();
    expect(s['token_embedding.weight']).toEqual([49408, 512]);
    expect(s['positional_embedding']).toEqual([77, 512]);
    expect(s['logit_scale']).toEqual([]);
    // 3 CLIP params, 3 visual params, conv1, 2 LNs x 2 tensors, 12 tensors per block, token embedding, ln_final.
    expect(Object.keys(s)).toHaveLength(3 + 3 + 1 + 4 + 12 * 12 + 12 * 12 + 1 + 2);
    expect(numel(s)).toBe(151_277_313);
  });

  it('gives RN50 OpenAI names, downsample branches where stride or width change, and BN buffers', () => {
    const s = clipStateDictShapes(getModelConfig('RN50'));
    expect(s['visual.conv1.weight']).toEqual([32, 3, 3, 3]);
    expect(s['visual.bn3.running_var']).toEqual([64]);
    expect(s['visual.bn1.num_batches_tracked']).toEqual([]);
    expect(s['visual.layer1.0.downsample.0.weight']).toEqual([256, 64, 1, 1]);
    expect(s['visual.layer1.0.downsample.1.running_mean']).toEqual([256]);
    expect(s['visual.layer1.1.downsample.0.weight']).toBeUndefined();
    expect(s['visual.layer2.0.downsample.0.weight']).toEqual([512, 256, 1, 1]);
    expect(s['visual.layer2.0.conv1.weight']).toEqual([128, 256, 1, 1]);
    expect(s['visual.layer3.5.conv3.weight']).toEqual([1024, 256, 1, 1]);
    expect(s['visual.layer3.6.conv1.weight']).toBeUndefined();
    expect(s['visual.layer4.2.bn3.weight']).toEqual([2048]);
    expect(s['visual.attnpool.positional_embedding']).toEqual([50, 2048]);
    expect(s['visual.attnpool.q_proj.weight']).toEqual([2048, 2048]);
    expect(s['visual.attnpool.c_proj.weight']).toEqual([1024, 2048]);
    expect(s['visual.attnpool.c_proj.bias']).toEqual([1024]);
    // model.parameters() of OpenAI's RN50 (BN running stats are buffers, not parameters).
    expect(numel(s, (k) => !isBuffer(k))).toBe(102_007_137);
    expect(numel(s, (k) => !isBuffer(k))).toBe(resnetParams(getModelConfig('RN50')) + textParams(getModelConfig('RN50')));
  });

  // OpenAI's released checkpoints, model.parameters() counts.
  it.each([
    ['RN50', 102_007_137], ['RN101', 119_688_033], ['RN50x4', 178_300_601], ['RN50x16', 290_979_217], ['RN50x64', 623_258_305],
    ['ViT-B/32', 151_277_313], ['ViT-B/16', 149_620_737], ['ViT-L/14', 427_616_513], ['ViT-L/14-336px', 427_944_193],
  ])('%s has %i parameters, as the architecture formula gives', (name, count) => {
    const cfg = getModelConfig(name);
    const shapes = clipStateDictShapes(cfg);
    expect(numel(shapes, (k) => !isBuffer(k))).toBe(count);
    expect(numel(shapes, (k) => !isBuffer(k))).toBe((isResNetConfig(cfg) ? resnetParams(cfg) : vitParams(cfg)) + textParams(cfg));
    expect(Object.values(shapes).every((shape) => shape.every((d) => Number.isInteger(d) && d > 0))).toBe(true);
  });

  it('covers every built-in config, tiny ones included', () => {
    for (const name of listModels().filter((n) => !OPENAI.includes(n))) {
      const cfg = getModelConfig(name);
      const shapes = clipStateDictShapes(cfg);
      expect(numel(shapes, (k) => !isBuffer(k))).toBe((isResNetConfig(cfg) ? resnetParams(cfg) : vitParams(cfg)) + textParams(cfg));
    }
    expect(clipStateDictShapes(getModelConfig('tiny-ViT'))['visual.positional_embedding']).toEqual([17, 64]);
    expect(clipStateDictShapes(getModelConfig('tiny-RN'))['visual.attnpool.positional_embedding']).toEqual([2, 256]);
  });
});
