import { readFileSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, description } from '../../../commands/deeplake.js';
import { parseQuery, selectIndices } from '../../../datamodules/deeplake/query.js';
import { DeepLakeDataset } from '../../../datamodules/deeplake/dataset.js';
import { LocalStorage } from '../../../datamodules/storage/local.js';
import { ensureDemoData } from '../../../scripts/demoData.js';
import { createHash } from 'node:crypto';

const FIXTURES = path.resolve(__dirname, '../../fixtures/deeplake');
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-dl-cmd-'));
  process.env.LIGHTCLIP_CACHE_DIR = path.join(root, 'cache');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function capture(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const orig = { log: console.log, error: console.error };
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await run(argv), out, err };
  } finally {
    Object.assign(console, orig);
  }
}

describe('lightclip deeplake show', () => {
  it('prints what deeplake read back: strings, numbers, image shapes and stored-bytes sha256', async () => {
    expect(description).toMatch(/Deep Lake/);
    const r = await capture(['show', '--path', path.join(FIXTURES, 'laion_like'), '--limit', '13', '--json']);
    expect(r.code).toBe(0);
    const rows = r.out.map((l) => JSON.parse(l));
    expect(rows).toHaveLength(13);
    for (const s of expected.datasets.laion_like.samples) {
      const row = rows[s.index];
      expect([row.TEXT, row.NSFW, row.WIDTH, row.HEIGHT]).toEqual([s.TEXT, s.NSFW, s.WIDTH, s.HEIGHT]);
      expect(row.URL.shape).toEqual(s.URL.shape);
      if (s.URL.stored_nbytes) {
        expect(row.URL.stored_sha256).toBe(s.URL.stored_sha256);
        expect(row.URL.decoded_shape).toEqual(s.URL.shape);
      }
    }
  });

  it('--query and --tensors select rows and columns; the query matches deeplake\'s', async () => {
    const r = await capture(['show', '--path', path.join(FIXTURES, 'laion_like'), '--tensors', 'TEXT,WIDTH', '--query', "SELECT * WHERE NSFW=='UNLIKELY' and WIDTH between 50 and 450", '--limit', '100']);
    const rows = r.out.map((l) => JSON.parse(l));
    expect(rows.map((x) => x.index)).toEqual(expected.datasets.laion_like.query_unlikely_width_50_450);
    expect(Object.keys(rows[0]).sort()).toEqual(['TEXT', 'WIDTH', 'index']);
  });

  it('bad input: one error line naming the dataset/tensor, exit 2', async () => {
    const r1 = await capture(['show', '--path', path.join(FIXTURES, 'laion_like'), '--tensors', 'NOPE']);
    expect([r1.code, r1.err.join('\n')]).toEqual([2, expect.stringMatching(/laion_like: no tensor "NOPE"/)]);
    const r2 = await capture(['info', '--path', path.join(root, 'missing')]);
    expect([r2.code, r2.err.join('\n')]).toEqual([2, expect.stringMatching(/missing is not a Deep Lake v3 dataset/)]);
    const r3 = await capture(['frobnicate']);
    expect(r3.code).toBe(2);
  });
});

describe('lightclip deeplake info', () => {
  it('lists tensors, htypes, lengths, branches and commits', async () => {
    const r = await capture(['info', '--path', path.join(FIXTURES, 'laion_like'), '--json']);
    const o = JSON.parse(r.out[0]!);
    const exp = expected.datasets.laion_like;
    expect(o.length).toBe(13);
    expect(o.tensors.map((t: { name: string }) => t.name).sort()).toEqual(Object.keys(exp.tensors).sort());
    expect(o.tensors.find((t: { name: string }) => t.name === 'URL')).toMatchObject({ htype: 'image', sample_compression: 'jpeg', length: 13, chunks: 1 });
    expect(o.branches).toEqual({ main: exp.pending_commit_id });
    expect(o.commits.map((c: { id: string }) => c.id).sort()).toEqual([exp.commit_id, exp.pending_commit_id].sort());
    const text = await capture(['info', '--path', path.join(FIXTURES, 'old_layout')]);
    expect(text.out.join('\n')).toMatch(/8 samples \(branch main, commit firstdbf/);
    expect(text.out.join('\n')).toMatch(/image: image uint8, jpeg, 8 samples in 1 chunks/);
  });
});

describe('lightclip deeplake convert', () => {
  it('converts a stem-matched folder; the DataModule-facing reader gets every image byte for byte and every caption', async () => {
    const data = await ensureDemoData(path.join(root, 'data'), { trainImages: 12, zeroshotPerClass: 1 });
    // one extra caption line and one broken image
    const capDir = path.join(data.train, 'captions');
    const imgDir = path.join(data.train, 'images');
    const files = fs.readdirSync(capDir).sort();
    writeFileSync(path.join(capDir, files[0]!), 'first line\nsecond line\n');
    writeFileSync(path.join(imgDir, 'broken.png'), 'not a png');
    writeFileSync(path.join(capDir, 'broken.txt'), 'caption of a broken image');
    const lines = files.flatMap((f) => readFileSync(path.join(capDir, f), 'utf8').split('\n').filter((l) => l.trim()));
    const out = path.join(root, 'converted');
    const r = await capture(['convert', '--folder', data.train, '--out', out, '--image_compression', 'png']);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toMatch(/skipping unreadable image .*broken.png/);
    expect(r.out.join('\n')).toMatch(new RegExp(`wrote ${lines.length} samples \\(12 images, 1 unreadable skipped\\)`));
    const ds = await DeepLakeDataset.open(new LocalStorage(out));
    expect(ds.length).toBe(lines.length);
    const texts: string[] = [];
    const shas = new Set<string>();
    for (let i = 0; i < ds.length; i++) {
      texts.push((await ds.tensor('TEXT').value(i)) as string);
      shas.add(createHash('sha256').update((await ds.tensor('URL').raw(i)).bytes).digest('hex'));
    }
    expect(texts.sort()).toEqual(lines.map((l) => l.trim()).sort());
    const want = fs.readdirSync(imgDir).filter((f) => f !== 'broken.png').map((f) => createHash('sha256').update(fs.readFileSync(path.join(imgDir, f))).digest('hex'));
    expect([...shas].sort()).toEqual(want.sort());
    const again = await capture(['convert', '--folder', data.train, '--out', out]);
    expect([again.code, again.err.join('')]).toEqual([2, expect.stringMatching(/already holds a Deep Lake dataset/)]);
  });
});

describe('TQL subset', () => {
  it('parses the fork\'s queries; BETWEEN is inclusive; unsupported syntax names what is supported', async () => {
    expect(parseQuery("SELECT * WHERE NSFW=='UNLIKELY'")).toEqual([{ kind: 'eq', column: 'NSFW', value: 'UNLIKELY' }]);
    expect(parseQuery('select * where WIDTH BETWEEN 50 AND 450 and HEIGHT == 200')).toEqual([
      { kind: 'between', column: 'WIDTH', lo: 50, hi: 450 },
      { kind: 'eq', column: 'HEIGHT', value: 200 },
    ]);
    for (const bad of ['SELECT URL WHERE NSFW == 1', "SELECT * WHERE NSFW != 'NSFW'", 'SELECT * WHERE WIDTH > 3', "SELECT * WHERE NSFW == 'A' ORDER BY WIDTH"]) {
      expect(() => parseQuery(bad), bad).toThrow(/supported: SELECT \* WHERE/);
    }
    const ds = await DeepLakeDataset.open(new LocalStorage(path.join(FIXTURES, 'laion_like')));
    // WIDTH values 210..630: the bounds themselves must be kept (300 is a WIDTH of samples 0 and 9)
    const at300 = await selectIndices(ds, 'SELECT * WHERE WIDTH between 300 and 300', { cacheDir: null });
    expect([...at300]).toEqual(expected.datasets.laion_like.samples.filter((s: { WIDTH: number }) => s.WIDTH === 300).map((s: { index: number }) => s.index));
    const cacheDir = path.join(root, 'qcache');
    const first = await selectIndices(ds, "SELECT * WHERE NSFW == 'NSFW'", { cacheDir });
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
    expect([...(await selectIndices(ds, "SELECT * WHERE NSFW == 'NSFW'", { cacheDir }))]).toEqual([...first]);
    expect([...first]).toEqual(expected.datasets.laion_like.samples.filter((s: { NSFW: string }) => s.NSFW === 'NSFW').map((s: { index: number }) => s.index));
  });
});
