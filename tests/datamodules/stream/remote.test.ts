import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { WebDatasetDataModule } from '../../../datamodules/webdataset.js';
import { fakeTokenizer, removeDir, tempDir } from '../helpers.js';
import { writeShards } from './fixtures.js';

let root: string;
let server: http.Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  root = await tempDir('lightclip-remote-');
  await writeShards(root, 2, 3);
  // Serves the shards over plain HTTP and as path-style S3 (GET /bucket/key); 404 otherwise.
  server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const name = (req.url ?? '').replace(/^\/(bucket\/)?/, '').replace(/\?.*$/, '');
    readFile(path.join(root, path.basename(name))).then(
      (b) => {
        res.writeHead(200, { 'content-length': b.length, 'content-type': 'application/x-tar' });
        res.end(b);
      },
      () => {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>not found</Message></Error>');
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await removeDir(root);
});

async function captions(valData: string, extra: Record<string, unknown> = {}): Promise<{ caps: string[]; dm: WebDatasetDataModule; lines: string[] }> {
  const lines: string[] = [];
  const dm = new WebDatasetDataModule({ valData, batchSize: 2, imageSize: 8, tokenizer: fakeTokenizer(), log: (l) => lines.push(l), ...extra });
  dm.setup('validate');
  const caps: string[] = [];
  for await (const b of dm.valDataloader()!) {
    caps.push(...b.captions);
    tf.dispose([b.images, b.texts]);
  }
  return { caps, dm, lines };
}

describe('shard URLs beyond local files', () => {
  it('http(s): reads shards; a 404 is a skipped, counted shard naming the URL and status', async () => {
    const { caps, dm, lines } = await captions(`${base}/shard-{000..001}.tar::${base}/missing.tar`);
    expect(caps).toEqual(['caption 0', 'caption 1', 'caption 2', 'caption 3', 'caption 4', 'caption 5']);
    expect(dm.skips.total.shard).toBe(1);
    expect(lines.some((l) => l.includes(`${base}/missing.tar: HTTP 404`))).toBe(true);
  });

  it('pipe: reads a command\'s stdout; a failing command is a skipped shard', async () => {
    const spec = `pipe:cat ${path.join(root, 'shard-000.tar')}::pipe:exit 3`;
    const { caps, dm, lines } = await captions(spec);
    expect(caps).toEqual(['caption 0', 'caption 1', 'caption 2']);
    expect(dm.skips.total.shard).toBe(1);
    expect(lines.some((l) => /pipe:exit 3: command exited with code 3/.test(l))).toBe(true);
  });

  it('s3:// through @aws-sdk/client-s3 GetObject against a loopback endpoint (--s3_endpoint)', async () => {
    const env = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    process.env.AWS_REGION = 'us-east-1';
    try {
      requests.length = 0;
      const { caps, dm, lines } = await captions('s3://bucket/shard-{000..001}.tar::s3://bucket/nope.tar', { s3Endpoint: base });
      expect(caps).toEqual(['caption 0', 'caption 1', 'caption 2', 'caption 3', 'caption 4', 'caption 5']);
      expect(requests.filter((r) => r.startsWith('GET /bucket/shard-000.tar')).length).toBe(1);
      expect(dm.skips.total.shard).toBe(1);
      expect(lines.some((l) => /s3:\/\/bucket\/nope\.tar: S3 GetObject failed \(HTTP 404\)/.test(l))).toBe(true);
    } finally {
      process.env = env;
    }
  });
});
