import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { tf } from '../../core/tf.js';
import { ensureDemoData } from '../../scripts/demoData.js';
import { buildForWorkers, CLI_SOURCES } from './fixtures/build.js';
import { spawnNode } from './helpers.js';

let build = '';
let root = '';
let folder = '';
beforeAll(async () => {
  build = await buildForWorkers(CLI_SOURCES);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-ddp-cli-'));
  folder = (await ensureDemoData(path.join(root, 'data'), { trainImages: 32, zeroshotPerClass: 1 })).train;
});

describe('train.js --strategy ddp --devices 2', () => {
  it('launches two workers from the CLI; only rank 0 logs and checkpoints', async () => {
    const run = spawnNode(
      [path.join(build, 'train.js'), '--strategy', 'ddp', '--devices', '2', '--model_name', 'tiny-ViT', '--folder', folder, '--batch_size', '4',
        '--max_steps', '3', '--num_workers', '0', '--no-progress_bar', '--default_root_dir', root, '--log_every_n_steps', '1'],
      { LIGHTCLIP_DDP_TIMEOUT: '60' },
    );
    const exit = await run.exit;
    expect(exit.code, `${run.out()}\n${run.err()}`).toBe(0);
    const versions = fs.readdirSync(path.join(root, 'lightning_logs'));
    expect(versions).toEqual(['version_0']);
    const ckpt = await loadCheckpointFile(path.join(root, 'lightning_logs', 'version_0', 'checkpoints', 'last.ckpt'));
    expect((ckpt.json as { globalStep: number }).globalStep).toBe(3);
    tf.dispose(Object.values(ckpt.tensors));
    // One backend line (rank 0), and the datamodule's scan report.
    expect(run.out().match(/lightclip: backend/g)).toHaveLength(1);
  });

  it('a wrong device count against the environment is a clear error', async () => {
    const run = spawnNode([path.join(build, 'train.js'), '--strategy', 'ddp', '--devices', '3', '--folder', folder], { WORLD_SIZE: '2', RANK: '0', LOCAL_RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1', TORCHELASTIC_RUN_ID: 'x' });
    const exit = await run.exit;
    expect(exit.code).toBe(2);
    expect(run.err()).toMatch(/--devices 3/);
  });
});
