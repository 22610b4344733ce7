import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointFile } from '../../core/checkpoint/io.js';
import { tf } from '../../core/tf.js';
import { ensureDemoData } from '../../scripts/demoData.js';
import { buildForWorkers, CLI_SOURCES } from './fixtures/build.js';
import { spawnNode, testBackends } from './helpers.js';

const BACKENDS = (await testBackends()).filter((b) => b !== 'mpi');

let build = '';
let root = '';
let folder = '';
beforeAll(async () => {
  build = await buildForWorkers(CLI_SOURCES);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-ddp-cli-'));
  folder = (await ensureDemoData(path.join(root, 'data'), { trainImages: 32, zeroshotPerClass: 1 })).train;
});

describe('train.js --strategy ddp --devices 2', () => {
  it.each(BACKENDS)('launches two workers from the CLI (--ddp_backend %s); only rank 0 logs and checkpoints', async (backend) => {
    const dir = path.join(root, backend);
    const run = spawnNode(
      [path.join(build, 'train.js'), '--strategy', 'ddp', '--devices', '2', '--ddp_backend', backend, '--model_name', 'tiny-ViT', '--folder', folder, '--batch_size', '4',
        '--max_steps', '3', '--num_workers', '0', '--no-progress_bar', '--default_root_dir', dir, '--log_every_n_steps', '1'],
      { LIGHTCLIP_DDP_TIMEOUT: '60' },
    );
    const exit = await run.exit;
    expect(exit.code, `${run.out()}\n${run.err()}`).toBe(0);
    // The start-up line names the backend and its transport, once (rank 0).
    const lines = run.out().match(/^ddp backend: .*$/gm) ?? [];
    expect(lines, run.out()).toHaveLength(1);
    expect(lines[0]).toMatch(backend === 'gloo' ? /^ddp backend: gloo [\d.]+ \(tcp 127\.0\.0\.1 on lo, store 127\.0\.0\.1:\d+\), 2 processes$/ : /^ddp backend: zmq \(tcp tcp:\/\/127\.0\.0\.1:\d+\), 2 processes$/);
    const versions = fs.readdirSync(path.join(dir, 'lightning_logs'));
    expect(versions).toEqual(['version_0']);
    const ckpt = await loadCheckpointFile(path.join(dir, 'lightning_logs', 'version_0', 'checkpoints', 'last.ckpt'));
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
