import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tf } from '../../../core/tf.js';
import { DeepLakeDataModule } from '../../../datamodules/deeplake/datamodule.js';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { openStorage } from '../../../datamodules/storage/index.js';
import { openHubStorage } from '../../../datamodules/storage/hub.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';
import { S3Storage } from '../../../datamodules/storage/s3.js';
import { fakeTokenizer } from '../helpers.js';
import { FakeActiveloop, LoopbackS3 } from '../../../scripts/bench/loopbackServers.js';

const FIXTURES = path.resolve(__dirname, '../../fixtures/deeplake');
const TOKEN = 'activeloop-secret-token-0123456789';
let s3: LoopbackS3;
let api: FakeActiveloop;
let cacheDir: string;
const env = { ...process.env };

beforeAll(async () => {
  s3 = await new LoopbackS3({ data: FIXTURES }).start();
  api = await new FakeActiveloop(s3, TOKEN, { org: 'genai360', ds: 'laion-tiny', bucket: 'data', prefix: 'laion_like' }).start();
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-dl-remote-'));
});
afterAll(async () => {
  await s3.stop();
  await api.stop();
  fs.rmSync(cacheDir, { recursive: true, force: true });
  process.env = env;
});
beforeEach(() => {
  process.env = { ...env, LIGHTCLIP_RETRY_BASE_MS: '1', LIGHTCLIP_CACHE_DIR: cacheDir, AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', LIGHTCLIP_ACTIVELOOP_URL: api.url };
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_ENDPOINT_URL;
  delete process.env.AWS_ENDPOINT_URL_S3;
  delete process.env.ACTIVELOOP_TOKEN;
  s3.keys.clear();
  s3.keys.set('AKIASTATIC', {});
  s3.faults.length = 0;
  s3.requests.length = 0;
  api.calls.length = 0;
  Object.assign(api, { agreements: [], agreed: false, private: true, ttlSeconds: 12 * 3600, usesPerKey: undefined, credsFailures: [] });
});

async function captions(dm: DeepLakeDataModule): Promise<string[]> {
  await dm.setup('fit');
  const out: string[] = [];
  for await (const b of dm.trainDataloader()) {
    out.push(...b.captions);
    tf.dispose([b.images, b.texts]);
  }
  await dm.teardown('fit');
  return out;
}
const dmOn = (p: string, logs: string[], extra: Record<string, unknown> = {}) =>
  new DeepLakeDataModule({ path: p, batchSize: 2, imageSize: 16, tokenizer: fakeTokenizer(32), shuffle: false, dropLast: false, filterNsfw: true, log: (l) => logs.push(l), ...extra });

describe('s3:// storage on a loopback S3 server', () => {
  it('reads the dataset like the local copy; endpoint from AWS_ENDPOINT_URL_S3, else --s3_endpoint', async () => {
    process.env.AWS_ENDPOINT_URL_S3 = s3.url;
    const logs: string[] = [];
    const local = await captions(dmOn(path.join(FIXTURES, 'laion_like'), []));
    expect(await captions(dmOn('s3://data/laion_like', logs))).toEqual(local);
    expect(s3.requests.some((r) => r.key === 'laion_like/URL/chunks/93bd64cda6064a2c')).toBe(true);
    delete process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:9'; // overridden by the flag
    expect(await captions(dmOn('s3://data/laion_like', [], { s3Endpoint: s3.url }))).toEqual(local);
  });

  it('ranged GetObject, HEAD and paginated listing', async () => {
    const st = S3Storage.fromUrl('s3://data/laion_like', { endpoint: s3.url, log: null });
    const whole = fs.readFileSync(path.join(FIXTURES, 'laion_like', 'TEXT', 'chunks', 'd855e4c871c64be7'));
    expect(Buffer.from(await st.get('TEXT/chunks/d855e4c871c64be7', { start: 10, end: 50 }))).toEqual(whole.subarray(10, 50));
    expect(s3.requests.at(-1)!.range).toBe('bytes=10-49');
    expect(await st.exists('dataset_meta.json')).toBe(true);
    expect(await st.exists('nope.json')).toBe(false);
    await expect(st.get('nope.json')).rejects.toThrow(/s3:\/\/data\/laion_like\/nope.json: no such object/);
    const listed = await st.list('TEXT/');
    expect(listed).toEqual(await new LocalStorage(path.join(FIXTURES, 'laion_like')).list('TEXT/'));
    expect(listed.length).toBeGreaterThan(3); // more than one page of 3
  });

  it('retries throttling (503), 500, a dropped connection and a truncated body, logging the URL', async () => {
    const logs: string[] = [];
    const st = S3Storage.fromUrl('s3://data/laion_like', { endpoint: s3.url, log: (l) => logs.push(l) });
    s3.faults.push({ kind: '503', match: 'dataset_meta', times: 2 }, { kind: 'drop', match: 'dataset_meta', times: 1 }, { kind: 'truncate', match: 'dataset_meta', times: 1 }, { kind: '500', match: 'dataset_meta', times: 0 });
    const got = await st.get('dataset_meta.json');
    expect(Buffer.from(got)).toEqual(fs.readFileSync(path.join(FIXTURES, 'laion_like', 'dataset_meta.json')));
    expect(logs.filter((l) => /s3:\/\/data\/laion_like\/dataset_meta.json: .*retry/.test(l))).toHaveLength(4);
    expect(logs.join('\n')).toMatch(/SlowDown/);
    // persistent failure: reported after the retries, with the URL
    s3.faults.push({ kind: '503', match: 'version_control', times: 100 });
    await expect(st.get('version_control_info.json')).rejects.toThrow(/GET s3:\/\/data\/laion_like\/version_control_info.json: SlowDown \(HTTP 503\)/);
  });

  it('bad static credentials are one clear error, not retried forever', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIAUNKNOWN';
    const st = S3Storage.fromUrl('s3://data/laion_like', { endpoint: s3.url, log: null });
    await expect(st.get('dataset_meta.json')).rejects.toThrow(/s3:\/\/data\/laion_like\/dataset_meta.json: InvalidAccessKeyId \(HTTP 403\)/);
    expect(s3.requests.length).toBe(1);
  });
});

describe('hub:// through a fake Activeloop API', () => {
  it('gets credentials with the token, reads through S3, refreshes credentials that expire mid-epoch', async () => {
    api.usesPerKey = 20; // each key dies after 20 S3 requests: several refreshes during setup and the epoch
    const logs: string[] = [];
    const local = await captions(dmOn(path.join(FIXTURES, 'laion_like'), []));
    const dm = dmOn('hub://genai360/laion-tiny', logs, { token: TOKEN });
    expect(await captions(dm)).toEqual(local);
    const creds = api.calls.filter((c) => c.path.endsWith('/creds'));
    expect(creds.length).toBeGreaterThan(2);
    expect(creds[0]!.noCache).toBe('False');
    expect(creds.slice(1).every((c) => c.noCache === 'True')).toBe(true);
    expect(api.calls.every((c) => c.authorized)).toBe(true);
    expect(api.calls[0]!.path).toBe('/api/user/profile');
    expect(logs.join('\n')).toMatch(/ExpiredToken; refreshing credentials/);
    expect(logs.join('\n')).not.toContain(TOKEN);
    expect(JSON.stringify(dm.hparams)).not.toContain(TOKEN);
    expect(JSON.stringify(dm.stateDict())).not.toContain(TOKEN);
  });

  it('refreshes before `expiration`; ACTIVELOOP_TOKEN is used when no token is given', async () => {
    process.env.ACTIVELOOP_TOKEN = TOKEN;
    api.ttlSeconds = 60; // inside the 5-minute refresh margin: every use asks for fresh ones
    const st = await openStorage('hub://genai360/laion-tiny', { log: null });
    for (let k = 0; k < 3; k++) await st.get('dataset_meta.json');
    // the first credentials serve the first request; each later one refreshes (no_cache=True)
    const creds = api.calls.filter((c) => c.path.endsWith('/creds'));
    expect(creds.map((c) => c.noCache)).toEqual(['False', 'True', 'True']);
    expect(new Set(s3.requests.map((r) => r.accessKeyId)).size).toBe(3);
  });

  it('a dataset needing an agreement: a clear error, or accepted with --deeplake_agree', async () => {
    api.agreements = ['LAION-400M terms of use'];
    const e = await openHubStorage('hub://genai360/laion-tiny', { token: TOKEN, log: null }).catch((err: Error) => err);
    expect(String(e)).toMatch(/hub:\/\/genai360\/laion-tiny: the dataset requires accepting its agreement\(s\) first: LAION-400M terms of use\. .*--deeplake_agree/);
    expect(api.agreed).toBe(false);
    const logs: string[] = [];
    const st = await openHubStorage('hub://genai360/laion-tiny', { token: TOKEN, acceptAgreements: true, log: (l) => logs.push(l) });
    expect(api.agreed).toBe(true);
    expect((await DeepLakeDataset.open(st)).length).toBe(13);
    expect(logs.join('\n')).toMatch(/accepted the dataset's agreement/);
  });

  it('login required, a rejected token, a missing dataset: clear errors without the token', async () => {
    await expect(openHubStorage('hub://genai360/laion-tiny', { log: null })).rejects.toThrow(/login required \(no token given\): pass --token or set ACTIVELOOP_TOKEN/);
    const bad = 'wrong-token-abcdefgh';
    const e = await openHubStorage('hub://genai360/laion-tiny', { token: bad, log: null }).catch((err: Error) => err);
    expect(String(e)).toMatch(/the Activeloop token was rejected \(HTTP 401\)/);
    expect(String(e)).not.toContain(bad);
    await expect(openHubStorage('hub://genai360/other', { token: TOKEN, log: null })).rejects.toThrow(/hub:\/\/genai360\/other: no such dataset/);
    await expect(openHubStorage('hub://justorg', { token: TOKEN, log: null })).rejects.toThrow(/expected hub:\/\/org\/dataset/);
  });

  it('throttled (503) and failing (500) API calls are retried; the public token is sent for public datasets', async () => {
    api.private = false;
    api.credsFailures = [503, 500];
    const logs: string[] = [];
    const st = await openHubStorage('hub://genai360/laion-tiny', { log: (l) => logs.push(l) });
    expect((await DeepLakeDataset.open(st)).length).toBe(13);
    expect(logs.filter((l) => /HTTP (503|500); retry/.test(l))).toHaveLength(2);
    expect(api.calls.some((c) => c.path === '/api/user/profile')).toBe(false);
  });
});
