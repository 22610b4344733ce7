import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointFile } from '../../../core/checkpoint/io.js';
import { tf } from '../../../core/tf.js';
import { DeepLakeWriter } from '../../../datamodules/deeplake/writer.js';
import { scanImageTextFolder } from '../../../datamodules/folderDataset.js';
import { ensureDemoData } from '../../../scripts/demoData.js';
import { main as train } from '../../../train.js';
import { main as evaluate } from '../../../eval.js';
import { readSafetensors } from '../../../core/checkpoint/safetensors.js';

let root: string;
let ds: string;
const TOKEN = 'sekrit-activeloop-token-4242';

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-dl-train-'));
  process.env.LIGHTCLIP_CACHE_DIR = path.join(root, 'cache');
  const data = await ensureDemoData(path.join(root, 'data'), { trainImages: 40, zeroshotPerClass: 1 });
  const scan = await scanImageTextFolder(data.train, { log: null });
  ds = path.join(root, 'ds');
  const w = await DeepLakeWriter.create(ds, [
    { name: 'URL', htype: 'image', sampleCompression: 'png', maxChunkSize: 2000 },
    { name: 'TEXT', htype: 'text' },
    { name: 'NSFW', htype: 'text' },
    { name: 'WIDTH', htype: 'generic', dtype: 'int64' },
  ]);
  for (const [i, p] of scan.pairs.entries()) {
    await w.append({ URL: new Uint8Array(fs.readFileSync(p.image)), TEXT: p.captions[0], NSFW: i % 5 === 4 ? 'NSFW' : 'UNLIKELY', WIDTH: 100 });
  }
  await w.commit('demo');
  await w.close();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const base = (dir: string) => ['--model_name', 'tiny-ViT', '--path', ds, '--filter_NSFW', '--token', TOKEN, '--batch_size', '8', '--num_workers', '0', '--warmup_steps', '2', '--lr', '1e-3', '--no-progress_bar', '--default_root_dir', dir, '--log_every_n_steps', '1', '--seed', '5'];

function grepDir(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const f = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    if (e.isFile() && fs.readFileSync(f).includes(needle)) hits.push(f);
  }
  return hits;
}

describe('train.ts --path (Deep Lake)', () => {
  it('trains with --filter_NSFW and --fp 16; resumes mid-epoch exactly; the token is nowhere in logs or checkpoints', async () => {
    const logs: string[] = [];
    const orig = { log: console.log, warn: console.warn };
    console.log = (...a: unknown[]) => void logs.push(a.join(' '));
    console.warn = (...a: unknown[]) => void logs.push(a.join(' '));
    try {
      const a = path.join(root, 'a');
      const full = await train([...base(a), '--max_steps', '3', '--fp', '16']);
      expect(full!.globalStep).toBe(3);
      expect(logs.join('\n')).toMatch(/--fp 16.*training with --precision 32/);
      expect(logs.join('\n')).toMatch(/32 selected/); // 40 pairs, every 5th NSFW
      // 32 samples / batch 8 = 4 batches per epoch: step 3 stops mid-epoch; a checkpoint at step 2 resumes there
      // (same --max_steps: the LR schedule depends on it)
      const b = path.join(root, 'b');
      const first = await train([...base(b), '--max_steps', '3', '--checkpoint_every_n_steps', '2']);
      const ckpts = fs.readdirSync(path.join(first!.logDir, 'checkpoints'));
      const step2 = ckpts.find((f) => /step=2\b/.test(f));
      expect(step2, ckpts.join(', ')).toBeDefined();
      const resumed = await train([...base(path.join(root, 'c')), '--max_steps', '3', '--resume', path.join(first!.logDir, 'checkpoints', step2!)]);
      expect(resumed!.globalStep).toBe(3);
      const ca = await loadCheckpointFile(path.join(full!.logDir, 'checkpoints', 'last.ckpt'));
      const cb = await loadCheckpointFile(path.join(resumed!.logDir, 'checkpoints', 'last.ckpt'));
      const w = 'state_dict.model.visual.conv1.weight';
      expect(Array.from(cb.tensors[w]!.dataSync())).toEqual(Array.from(ca.tensors[w]!.dataSync()));
      tf.dispose([...Object.values(ca.tensors), ...Object.values(cb.tensors)]);
      for (const dir of [a, b, path.join(root, 'c')]) expect(grepDir(dir, TOKEN)).toEqual([]);
      // eval.ts embed reads the same dataset
      const out = path.join(root, 'emb.safetensors');
      const shapes = (await evaluate(['embed', '--weights', path.join(full!.logDir, 'checkpoints', 'last.ckpt'), '--model_name', 'tiny-ViT', '--path', ds, '--limit', '10', '--batch_size', '4', '--out', out])) as { image: number[]; text: number[] };
      expect(shapes.image[0]).toBe(10);
      expect(shapes.text[0]).toBe(10);
      const emb = await readSafetensors(out);
      expect(JSON.parse((emb.metadata as Record<string, string>).indices!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(logs.join('\n')).not.toContain(TOKEN);
    } finally {
      Object.assign(console, orig);
    }
  });

  it('rejects --path with --folder, and a path that is no dataset, naming the flag', async () => {
    await expect(train(['--model_name', 'tiny-ViT', '--path', ds, '--folder', root])).rejects.toThrow(/`--path` \(Deep Lake\) and `--folder` exclude each other/);
    await expect(train(['--model_name', 'tiny-ViT', '--path', path.join(root, 'data'), '--no-progress_bar', '--default_root_dir', path.join(root, 'c')])).rejects.toThrow(/is not a Deep Lake v3 dataset/);
  });
});
