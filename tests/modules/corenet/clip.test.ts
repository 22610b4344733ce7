/**
 * CoreNet CLIP/CatLIP towers: names and shapes against CoreNet's own key dumps
 * (shared/research/corenet_keys, from real builds of its configs) at reduced widths, `.pt`
 * loading through the restricted unpickler, and forward passes against an independent
 * PyTorch implementation of CoreNet's ViT/text forward (skipped without /usr/bin/python3 + torch).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { CorenetClip, CorenetVit, loadCorenetStateDict } from '../../../modules/corenet/clip.js';
import { readWeightsAsTensors } from '../../../modules/weights/readWeights.js';
import { corenetZeroShot } from '../../../modules/corenet/zeroshot.js';
import { ClipTokenizer } from '../../../modules/tokenizers/clipTokenizer.js';
import { main as evaluate } from '../../../eval.js';
import sharp from 'sharp';

const KEYS = '/work/shared/research/corenet_keys';
const keysDir = fs.existsSync(KEYS) ? KEYS : path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../shared/research/corenet_keys');
// Full-size dimension → the reduced one used here.
const SHRINK: Record<number, number> = { 768: 16, 3072: 64, 2304: 48, 192: 4, 512: 16, 1536: 48, 2048: 64, 24320: 10 };
const shrink = (shape: number[]) => shape.map((d) => SHRINK[d] ?? d);

const tinyClip = () =>
  new CorenetClip(
    { width: 16, layers: 12, heads: 2, ffnDim: 64, head: { kind: 'proj', dim: 16 } },
    { vocabSize: 49408, width: 16, layers: 12, heads: 2, ffnDim: 64, contextLength: 77, projDim: 16 },
  );
const tinyCatlip = () => new CorenetVit({ width: 16, layers: 12, heads: 2, ffnDim: 64, flashNames: true, head: { kind: 'linear', classes: 10 } });

function expectedShapes(file: string): Record<string, number[]> {
  const dump = JSON.parse(fs.readFileSync(path.join(keysDir, file), 'utf8')) as Record<string, number[]>;
  return Object.fromEntries(Object.entries(dump).map(([k, s]) => [k, shrink(s)]));
}

function shapesOf(sd: Record<string, tf.Tensor>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, [...t.shape]]));
}

const torchOk = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!fs.existsSync(keysDir))('CoreNet names and shapes', () => {
  it("CLIP ViT-B/16: every state-dict key of CoreNet's build, same layout", () => {
    const m = tinyClip();
    expect(shapesOf(m.stateDict())).toEqual(expectedShapes('clip_vit_base.json'));
  });
  it('CatLIP ViT-B/16 (flash attention names) and its transfer heads', () => {
    expect(shapesOf(tinyCatlip().stateDict())).toEqual(expectedShapes('catlip_vit_base.json'));
  });
});

describe.skipIf(!torchOk)('CoreNet .pt checkpoints (PyTorch reference)', () => {
  it('loads a torch.save state dict with CoreNet names and matches a PyTorch forward of CoreNet CLIP', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-corenet-'));
    const shapes = expectedShapes('clip_vit_base.json');
    fs.writeFileSync(path.join(dir, 'shapes.json'), JSON.stringify(shapes));
    const img = Float32Array.from({ length: 2 * 64 * 48 * 3 }, (_, i) => ((i * 7919) % 1000) / 1000);
    fs.writeFileSync(path.join(dir, 'img.bin'), Buffer.from(img.buffer));
    const script = `
import json, sys, torch, torch.nn.functional as F
d = sys.argv[1]
torch.manual_seed(0)
shapes = json.load(open(d + '/shapes.json'))
sd = {}
for k, s in shapes.items():
    if k.endswith('num_batches_tracked'): sd[k] = torch.tensor(3, dtype=torch.int64)
    elif k.endswith('running_var'): sd[k] = torch.rand(s) + 0.5
    elif len(s) >= 2 and not k.endswith(('cls_token', 'pos_embed')): sd[k] = torch.randn(s) / (torch.tensor(s[1:]).prod().float().sqrt() if len(s) > 2 or 'proj' not in k.split('.')[-1] else s[0] ** 0.5)
    elif k.endswith('weight') and len(s) == 1: sd[k] = 1 + 0.1 * torch.randn(s)
    else: sd[k] = torch.randn(s) * 0.1
torch.save(sd, d + '/clip.pt')
x = torch.frombuffer(bytearray(open(d + '/img.bin', 'rb').read()), dtype=torch.float32).reshape(2, 64, 48, 3).permute(0, 3, 1, 2)
def block(x, p, eps, heads, mask=None):
    B, L, D = x.shape
    h = F.layer_norm(x, (D,), sd[p + 'pre_norm_mha.0.weight'], sd[p + 'pre_norm_mha.0.bias'], eps)
    qkv = F.linear(h, sd[p + 'pre_norm_mha.1.qkv_proj.weight'], sd[p + 'pre_norm_mha.1.qkv_proj.bias']).reshape(B, L, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
    a = (qkv[0] * (D // heads) ** -0.5) @ qkv[1].transpose(-1, -2)
    if mask is not None: a = a + mask
    o = (a.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(B, L, D)
    x = x + F.linear(o, sd[p + 'pre_norm_mha.1.out_proj.weight'], sd[p + 'pre_norm_mha.1.out_proj.bias'])
    h = F.layer_norm(x, (D,), sd[p + 'pre_norm_ffn.0.weight'], sd[p + 'pre_norm_ffn.0.bias'], eps)
    h = F.linear(F.gelu(F.linear(h, sd[p + 'pre_norm_ffn.1.weight'], sd[p + 'pre_norm_ffn.1.bias'])), sd[p + 'pre_norm_ffn.4.weight'], sd[p + 'pre_norm_ffn.4.bias'])
    return x + h
def stem(x, i, stride, pad, bn):
    p = 'image_encoder.patch_emb.%d.block.' % i
    x = F.conv2d(x, sd[p + 'conv.weight'], sd.get(p + 'conv.bias'), stride=stride, padding=pad)
    if bn: x = F.gelu(F.batch_norm(x, sd[p + 'norm.running_mean'], sd[p + 'norm.running_var'], sd[p + 'norm.weight'], sd[p + 'norm.bias'], False, 0.1, 1e-5))
    return x
x = stem(stem(stem(x, 0, 4, 1, True), 1, 2, 0, True), 2, 2, 0, False)
B, D = x.shape[0], x.shape[1]
x = x.flatten(2).transpose(1, 2)
pos = F.interpolate(sd['image_encoder.pos_embed.pos_embed.pos_embed'], size=(x.shape[1], D), mode='bilinear', align_corners=False)
x = torch.cat([sd['image_encoder.cls_token'].expand(B, -1, -1), x + pos[0]], 1)
for i in range(12): x = block(x, 'image_encoder.transformer.%d.' % i, 1e-6, 2)
x = F.layer_norm(x, (D,), sd['image_encoder.post_transformer_norm.weight'], sd['image_encoder.post_transformer_norm.bias'], 1e-6)[:, 0] @ sd['image_encoder.classifier.proj']
tok = torch.tensor([[49406, 320, 1929, 49407] + [0] * 73, [49406, 500, 49407] + [0] * 74])
t = F.embedding(tok, sd['text_encoder.embedding_layer.weight']) + sd['text_encoder.positional_embedding.pos_embed.pos_embed'][0]
mask = torch.full((77, 77), float('-inf')).triu(1)
for i in range(12): t = block(t, 'text_encoder.transformer.%d.' % i, 1e-5, 2, mask)
t = F.layer_norm(t, (16,), sd['text_encoder.final_layer_norm.weight'], sd['text_encoder.final_layer_norm.bias'], 1e-5)
t = t[torch.arange(2), tok.argmax(-1)] @ sd['text_encoder.projection_layer']
json.dump({'image': x.tolist(), 'text': t.tolist(), 'cls_sum': float(sd['image_encoder.cls_token'].sum())}, open(d + '/ref.json', 'w'))
`;
    execFileSync('/usr/bin/python3', ['-c', script, dir], { stdio: 'pipe' });
    const ref = JSON.parse(fs.readFileSync(path.join(dir, 'ref.json'), 'utf8')) as { image: number[][]; text: number[][]; cls_sum: number };
    const sd = await readWeightsAsTensors(path.join(dir, 'clip.pt'));
    const model = tinyClip();
    loadCorenetStateDict(model, sd);
    model.eval();
    expect(model.imageEncoder.clsToken.variable.sum().dataSync()[0]).toBeCloseTo(ref.cls_sum, 4);
    const image = model.encodeImage(tf.tensor4d(img, [2, 64, 48, 3])).arraySync() as number[][];
    const flat = (a: number[][]) => a.flat();
    const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    expect(maxDiff(flat(image), flat(ref.image))).toBeLessThan(2e-3);
    // The image-dependent part alone (the class token dominates the absolute values).
    const dOurs = image[0]!.map((v, i) => v - image[1]![i]!);
    const dRef = ref.image[0]!.map((v, i) => v - ref.image[1]![i]!);
    const scale = Math.max(...dRef.map(Math.abs));
    expect(scale).toBeGreaterThan(1e-4);
    expect(maxDiff(dOurs, dRef)).toBeLessThan(0.02 * scale);
    const ids = new Int32Array(2 * 77);
    [49406, 320, 1929, 49407].forEach((v, i) => (ids[i] = v));
    [49406, 500, 49407].forEach((v, i) => (ids[77 + i] = v));
    const text = model.encodeText(tf.tensor2d(ids, [2, 77], 'int32')).arraySync() as number[][];
    expect(maxDiff(flat(text), flat(ref.text))).toBeLessThan(2e-3);

    // CoreNet's zero-shot procedure on a small ImageFolder, and its classifier columns = prompt means.
    const data = path.join(dir, 'zs');
    for (const [cls, rgb] of [['dog', '#d04010'], ['cat', '#2040e0']] as const) {
      fs.mkdirSync(path.join(data, cls), { recursive: true });
      for (let i = 0; i < 2; i++) {
        const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="80" height="60"><rect width="100%" height="100%" fill="${rgb}"/><circle cx="${20 + 20 * i}" cy="30" r="12" fill="#fff"/></svg>`;
        fs.writeFileSync(path.join(data, cls, `${i}.png`), await sharp(Buffer.from(svg)).png().toBuffer());
      }
    }
    const zs = await corenetZeroShot(model, { samples: [0, 1].flatMap((label) => [0, 1].map((i) => ({ path: path.join(data, label ? 'dog' : 'cat', `${i}.png`), label }))), classNames: ['cat', 'dog'], templates: ['a photo of a {}.', 'a {}'], tokenizer: ClipTokenizer.default(), batchSize: 3 });
    expect(zs.count).toBe(4);
    expect(zs.top5).toBe(1);
    await expect(evaluate(['zeroshot', '--model_name', 'corenet/nope', '--weights', path.join(dir, 'clip.pt'), '--data', data])).rejects.toThrow(/corenet\/clip_vit_base/);

    // CatLIP's flash names load into a CLIP-named tower and vice versa; strictness otherwise.
    const renamed = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k.replace('.out_proj.', '.out_proj_attn.'), t]));
    expect(() => loadCorenetStateDict(tinyClip(), renamed)).not.toThrow();
    const { ['logit_scale']: _drop, ...partial } = sd;
    expect(() => loadCorenetStateDict(tinyClip(), partial)).toThrow(/1 missing \(logit_scale\)/);
    expect(() => loadCorenetStateDict(tinyClip(), { ...sd, 'image_encoder.extra': tf.zeros([1]) })).toThrow(/1 unexpected \(image_encoder.extra\)/);
  });
});
