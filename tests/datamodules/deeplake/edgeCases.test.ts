import * as fs from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeepLakeDataModule } from '../../../datamodules/deeplake/datamodule.js';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { parseDeepLakeJson, toNumbers, toTypedArray } from '../../../datamodules/deeplake/decode.js';
import { DeepLakeWriter } from '../../../datamodules/deeplake/writer.js';
import { fetchUrl } from '../../../datamodules/storage/index.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';
import { LoopbackS3 } from '../../../scripts/bench/loopbackServers.js';
import { fakeTokenizer } from '../helpers.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-dl-edge-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('sample decoding', () => {
  it('float16 (IEEE half, by hand) and deeplake\'s JSON custom types', () => {
    // 1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001
    const half = Uint8Array.from([0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b, 0x01, 0x00]);
    expect(toNumbers(toTypedArray(half, 'float16', 'x'))).toEqual([1, -2.5, 65504, 2 ** -24]);
    expect(() => toTypedArray(Uint8Array.from([1, 2, 3]), 'int16', 'T[0]')).toThrow(/T\[0\]: 3 bytes is not a whole number of int16 values/);
    const nd = { _hub_custom_type: 'ndarray', data: Buffer.from(Int32Array.from([7, -1]).buffer).toString('base64'), dtype: '<i4', shape: [2] };
    const by = { _hub_custom_type: 'bytes', data: Buffer.from('hi').toString('base64') };
    expect(parseDeepLakeJson(JSON.stringify({ a: nd, b: by, c: 1 }), 'j')).toEqual({ a: { dtype: 'int32', shape: [2], data: [7, -1] }, b: Uint8Array.from([104, 105]), c: 1 });
    expect(() => parseDeepLakeJson('{oops', 'ds: tensor "j" sample 3')).toThrow(/ds: tensor "j" sample 3: invalid JSON sample/);
  });
});

describe('unsupported metas and chunk_set entry forms', () => {
  it('an unsupported compression or htype names the dataset, tensor and what is supported', async () => {
    const dir = path.join(root, 'unsupported');
    const w = await DeepLakeWriter.create(dir, [{ name: 'URL', htype: 'image', sampleCompression: 'jpeg' }, { name: 'TEXT', htype: 'text' }, { name: 'V', htype: 'generic', dtype: 'int32' }]);
    await w.append({ URL: null, TEXT: 'x', V: 1 });
    await w.close();
    const edit = (t: string, patch: Record<string, unknown>) => {
      const f = path.join(dir, t, 'tensor_meta.json');
      fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), ...patch }));
    };
    edit('URL', { sample_compression: 'mp4' });
    edit('V', { chunk_compression: 'png', typestr: null, dtype: 'complex64' });
    const ds = await DeepLakeDataset.open(new LocalStorage(dir));
    await expect(ds.tensor('URL').raw(0)).rejects.toThrow(/unsupported: tensor "URL": sample compression "mp4" is not supported \(supported: jpeg, png, lz4, none\)/);
    await expect(ds.tensor('V').raw(0)).rejects.toThrow(/tensor "V": chunk compression "png" is not supported/);
    const m = new DeepLakeDataModule({ path: dir, batchSize: 1, tokenizer: fakeTokenizer(), log: null });
    await expect(m.setup('fit')).rejects.toThrow(/tensor "URL": sample compression "mp4"/);
  });

  it('resolves chunk_set entries "name:commit" and "name:commit:key"', async () => {
    const dir = path.join(root, 'vc');
    const w = await DeepLakeWriter.create(dir, [{ name: 'TEXT', htype: 'text' }]);
    await w.append({ TEXT: 'root' });
    const c1 = await w.commit('one');
    await w.update('TEXT', 0, 'in c2');
    const c2 = await w.commit('two');
    await w.close();
    const head = (await DeepLakeDataset.open(new LocalStorage(dir))).commitId;
    const name = (await DeepLakeDataset.open(new LocalStorage(dir))).tensor('TEXT').index.names[0]!;
    expect(c1).toBe('firstdbf9474d461a19e9333c2fd19b46115348f');
    // move c2's copy elsewhere and point the head's chunk_set at it in both long forms
    fs.mkdirSync(path.join(dir, 'versions', c2, 'OTHER', 'chunks'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'versions', c2, 'TEXT', 'chunks', name), path.join(dir, 'versions', c2, 'OTHER', 'chunks', name));
    fs.writeFileSync(path.join(dir, 'versions', head, 'TEXT', 'chunk_set'), `${name}:${c2}:OTHER`);
    fs.rmSync(path.join(dir, 'versions', c2, 'TEXT', 'chunks', name));
    expect(await (await DeepLakeDataset.open(new LocalStorage(dir))).tensor('TEXT').value(0)).toBe('in c2');
    fs.writeFileSync(path.join(dir, 'versions', head, 'TEXT', 'chunk_set'), `${name}:${c1}`);
    fs.mkdirSync(path.join(dir, 'versions', c1, 'TEXT', 'chunks'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'versions', c1, 'TEXT', 'chunks', name), fs.readFileSync(path.join(dir, 'TEXT', 'chunks', name)));
    expect(await (await DeepLakeDataset.open(new LocalStorage(dir))).tensor('TEXT').value(0)).toBe('root');
  });
});

describe('link targets over http(s) and s3://', () => {
  it('fetches http links (retrying a 503) and s3:// links; a 404 is one error naming the URL', async () => {
    const png = fs.readFileSync(path.resolve(__dirname, '../../fixtures/deeplake/laion_like/dataset_meta.json'));
    let hits = 0;
    const server = createServer((req, res) => {
      hits++;
      if (req.url === '/flaky' && hits === 1) return void res.writeHead(503).end();
      if (req.url === '/flaky') return void res.end(png);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const s3 = await new LoopbackS3({ links: path.resolve(__dirname, '../../fixtures/deeplake/laion_like') }).start();
    s3.keys.set('AKIALINK', {});
    const saved = { ...process.env };
    Object.assign(process.env, { LIGHTCLIP_RETRY_BASE_MS: '1', AWS_ACCESS_KEY_ID: 'AKIALINK', AWS_SECRET_ACCESS_KEY: 'x', AWS_ENDPOINT_URL_S3: s3.url, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' });
    try {
      expect(Buffer.from(await fetchUrl(`${base}/flaky`))).toEqual(png);
      await expect(fetchUrl(`${base}/missing?token=abc123secret`)).rejects.toThrow(/GET http:\/\/127.0.0.1:\d+\/missing\?token=<redacted>: HTTP 404/);
      expect(Buffer.from(await fetchUrl('s3://links/dataset_meta.json'))).toEqual(png);
    } finally {
      process.env = saved;
      server.close();
      await s3.stop();
    }
  });
});
