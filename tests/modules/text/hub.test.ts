import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../../../core/checkpoint/safetensors.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { tf } from '../../../core/tf.js';
import { BertModel } from '../../../modules/text/bert.js';
import { HfTokenizer } from '../../../modules/text/hfTokenizer.js';
import { HubDownloadError, hubSnapshotDir, type FetchLike } from '../../../modules/text/hub.js';
import { loadHfTextEncoder } from '../../../modules/text/pretrained.js';
import { expectClose } from '../../core/nn/helpers.js';
import { bertSpec, randomRaw, TINY_BERT, writeModelDir } from './fixtures.js';
import { WORDPIECE_JSON } from './tokenizerFixtures.js';

const root = mkdtempSync(join(tmpdir(), 'lightclip-hub-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const raw = randomRaw(bertSpec(TINY_BERT), 9);
const ids = tf.tensor2d([[2, 5, 6, 3, 0]], [1, 5], 'int32');
const mask = tf.tensor2d([[1, 1, 1, 1, 0]], [1, 5], 'int32');

/** A fetch that must never run. */
const noNetwork: FetchLike & { calls: string[] } = Object.assign(
  async (url: string): Promise<Response> => {
    noNetwork.calls.push(url);
    throw new Error('network disabled in tests');
  },
  { calls: [] as string[] },
);

async function referenceOutput(): Promise<tf.Tensor> {
  const model = await BertModel.fromPretrained(await writeModelDir(join(root, 'local-ref'), TINY_BERT, raw));
  model.eval();
  const out = model.forward(ids, mask).lastHiddenState;
  model.dispose();
  return out;
}

describe('fromPretrained through the hub cache (no network)', () => {
  it('loads model and tokenizer from a pre-filled cache without fetching', async () => {
    const cacheDir = join(root, 'cache1');
    const snap = hubSnapshotDir('lightclip-test/tiny-bert', 'main', cacheDir);
    expect(snap).toBe(join(cacheDir, 'lightclip-test--tiny-bert', 'main'));
    await writeModelDir(snap, TINY_BERT, raw);
    writeFileSync(join(snap, 'tokenizer.json'), JSON.stringify(WORDPIECE_JSON));
    writeFileSync(join(snap, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 8 }));
    const model = await BertModel.fromPretrained('lightclip-test/tiny-bert', { cacheDir, fetch: noNetwork });
    model.eval();
    expectClose(model.forward(ids, mask).lastHiddenState, await referenceOutput(), 0);
    const tok = await HfTokenizer.fromPretrained('lightclip-test/tiny-bert', { cacheDir, fetch: noNetwork });
    expect(tok.contextLength).toBe(8);
    expect(noNetwork.calls).toEqual([]);
    model.dispose();
  });

  it('fails clearly when offline and not cached, naming the cache path', async () => {
    const cacheDir = join(root, 'cache-empty');
    const offline = await loadHfTextEncoder('lightclip-test/absent', { cacheDir, offline: true }).catch((e: unknown) => e);
    expect(offline).toBeInstanceOf(HubDownloadError);
    expect((offline as Error).message).toContain(hubSnapshotDir('lightclip-test/absent', 'main', cacheDir));
    expect((offline as Error).message).toMatch(/offline/);
    const unreachable = await loadHfTextEncoder('lightclip-test/absent', { cacheDir, fetch: noNetwork }).catch((e: unknown) => e);
    expect((unreachable as Error).message).toMatch(/Could not download https:\/\/huggingface\.co\/lightclip-test\/absent\/resolve\/main\/config\.json .*looks offline/);
    const env = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      noNetwork.calls.length = 0;
      await expect(loadHfTextEncoder('lightclip-test/absent', { cacheDir, fetch: noNetwork })).rejects.toThrow(HubDownloadError);
      expect(noNetwork.calls).toEqual([]);
    } finally {
      if (env === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = env;
    }
  });

  it('downloads into the cache from /<id>/resolve/<revision>/<file>, falling back to pytorch_model.bin', async () => {
    // A fake hub serving a directory: 404 for what it does not hold (model.safetensors, tokenizer_config.json).
    const served = await writeModelDir(join(root, 'served'), TINY_BERT, raw, { format: 'bin', prefix: 'bert.' });
    writeFileSync(join(served, 'tokenizer.json'), JSON.stringify(WORDPIECE_JSON));
    const calls: string[] = [];
    const fakeHub: FetchLike = async (url) => {
      calls.push(url);
      const m = /^https:\/\/huggingface\.co\/org\/tiny\/resolve\/v1\.0\/(.+)$/.exec(url);
      const file = m ? join(served, m[1]!) : '';
      return m && existsSync(file) ? new Response(readFileSync(file)) : new Response('not found', { status: 404 });
    };
    const cacheDir = join(root, 'cache2');
    const { model, report } = await loadHfTextEncoder('org/tiny', { cacheDir, revision: 'v1.0', fetch: fakeHub });
    const base = 'https://huggingface.co/org/tiny/resolve/v1.0/';
    expect(calls).toEqual(['config.json', 'model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'tokenizer.json', 'tokenizer_config.json'].map((f) => base + f));
    const snap = hubSnapshotDir('org/tiny', 'v1.0', cacheDir);
    expect(report.dir).toBe(snap);
    expect(existsSync(join(snap, 'pytorch_model.bin'))).toBe(true);
    model.eval();
    expectClose(model.forward(ids, mask).lastHiddenState, await referenceOutput(), 0);
    model.dispose();
    // Everything is cached now, 404s included: a second load makes no request.
    calls.length = 0;
    (await loadHfTextEncoder('org/tiny', { cacheDir, revision: 'v1.0', fetch: fakeHub })).model.dispose();
    expect(calls).toEqual([]);
  });

  it('reports HTTP errors with a hint for gated repositories', async () => {
    const denied: FetchLike = async () => new Response('no', { status: 401, statusText: 'Unauthorized' });
    await expect(loadHfTextEncoder('org/gated', { cacheDir: join(root, 'cache3'), fetch: denied })).rejects.toThrow(/HTTP 401 Unauthorized \(gated or private repository: pass `token`\)/);
  });
});

describe('local directories', () => {
  it('rejects a missing directory or a file, and a directory without weights', async () => {
    await expect(loadHfTextEncoder('./no/such/dir')).rejects.toThrow(MisconfigurationError);
    await expect(loadHfTextEncoder(join(root, 'nowhere'))).rejects.toThrow(/does not exist/);
    const file = join(root, 'a-file.json');
    writeFileSync(file, '{}');
    await expect(loadHfTextEncoder(file)).rejects.toThrow(/is a file/);
    const empty = join(root, 'config-only');
    mkdirSync(empty);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(TINY_BERT));
    await expect(loadHfTextEncoder(empty)).rejects.toThrow(/has no `model\.safetensors` or `model\.safetensors\.index\.json` or `pytorch_model\.bin`/);
  });

  it('loads sharded safetensors through model.safetensors.index.json', async () => {
    const dir = join(root, 'sharded');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY_BERT));
    const names = Object.keys(raw);
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((keys, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(dir, file), encodeSafetensors(Object.fromEntries(keys.map((k) => [k, raw[k]!]))));
      for (const k of keys) weightMap[k] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const { model, report } = await loadHfTextEncoder(dir);
    expect(report.weightFiles.length).toBe(2);
    model.eval();
    expectClose(model.forward(ids, mask).lastHiddenState, await referenceOutput(), 0);
    model.dispose();
  });
});
