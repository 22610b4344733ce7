import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run as wds } from '../../../commands/wds.js';
import { loadCheckpointFile } from '../../../core/checkpoint/io.js';
import { tf } from '../../../core/tf.js';
import { ensureDemoData } from '../../../scripts/demoData.js';
import { main as train } from '../../../train.js';

let root: string;
let shards: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-wds-train-'));
  const data = await ensureDemoData(path.join(root, 'data'), { trainImages: 24, zeroshotPerClass: 1 });
  shards = path.join(root, 'shards');
  expect(await wds(['write', '--folder', data.train, '--out', shards, '--maxcount', '8', '--quiet'])).toBe(0);
});

const base = (dir: string) => ['--model_name', 'tiny-ViT', '--train_data', path.join(shards, 'shard-{000000..000002}.tar'), '--batch_size', '4', '--num_workers', '0', '--warmup_steps', '2', '--lr', '1e-3', '--no-progress_bar', '--default_root_dir', dir, '--log_every_n_steps', '1', '--seed', '5'];

describe('lightclip wds write + train.ts --train_data', () => {
  it('writes shards with sizes.json', () => {
    expect(fs.readdirSync(shards).sort()).toEqual(['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar', 'sizes.json']);
    expect(JSON.parse(fs.readFileSync(path.join(shards, 'sizes.json'), 'utf8'))).toEqual({ 'shard-000000.tar': 8, 'shard-000001.tar': 8, 'shard-000002.tar': 8 });
  });

  it('trains on shards and resumes mid-epoch from the checkpoint (datamodule state saved)', async () => {
    // The data side of exact resume (same batches after a restore) is tested in
    // webdataset.test.ts; here the Trainer round trip. (Weights cannot be compared with an
    // uninterrupted run from the CLI: the LR schedule depends on --max_steps.)
    const b = path.join(root, 'b');
    const first = await train([...base(b), '--max_steps', '3']);
    expect(first!.globalStep).toBe(3);
    const ckpt = await loadCheckpointFile(path.join(first!.logDir, 'checkpoints', 'last.ckpt'));
    tf.dispose(Object.values(ckpt.tensors));
    expect((ckpt.json as { datamodule: { epoch: number; seed: number } }).datamodule).toMatchObject({ epoch: 0, seed: 5 });
    const resumed = await train([...base(b), '--max_steps', '8', '--resume', 'last']);
    expect(resumed!.globalStep).toBe(8); // 6 batches per epoch: the resumed run crosses into epoch 1
  });

  it('names conflicting and bad data flags', async () => {
    await expect(train(['--folder', shards, '--train_data', 'x.tar'])).rejects.toThrow(/`--folder`\/`--path` and `--train_data`.*exclude each other/);
    await expect(train(['--model_name', 'tiny-ViT', '--train_data', path.join(shards, 'nope-{0..1}.tar'), '--num_workers', '0', '--max_steps', '1'])).rejects.toThrow(/sizes\.json: no sample count for nope-0\.tar/);
    await expect(train(['--model_name', 'tiny-ViT', '--dataset_type', 'img_text_tar', '--train_data', 'x'])).rejects.toThrow(/needs `--metadata/);
  });
});
