import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as data } from '../../../commands/data.js';
import { tf } from '../../../core/tf.js';
import { CsvDataModule, parseDelimited } from '../../../datamodules/csv.js';
import { fakeTokenizer, removeDir, tempDir } from '../helpers.js';
import { sampleImage, writeShards } from './fixtures.js';

let root: string;
beforeAll(async () => {
  root = await tempDir('lightclip-csv-');
});
afterAll(() => removeDir(root));

async function show(args: string[]): Promise<Array<Record<string, unknown>>> {
  const lines: string[] = [];
  expect(await data(['show', ...args, '--json', '--image_size', '8'], (l) => lines.push(l))).toBe(0);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('CSV / TSV (open_clip CsvDataset)', () => {
  it('parses quotes, doubled quotes, multi-line fields, CRLF and picks columns by name', () => {
    const text = 'id,filepath,title\r\n1,a.png,"x, ""y""\nz"\r\n\r\n2,b.png,plain\n';
    expect(parseDelimited(text, ',', ['filepath', 'title'], 'f.csv')).toEqual([['a.png', 'b.png'], ['x, "y"\nz', 'plain']]);
    expect(() => parseDelimited(text, ',', ['image', 'title'], 'f.csv')).toThrow(/f\.csv: no column "image" \(columns: "id", "filepath", "title"\)/);
    expect(() => parseDelimited('a\tb\n"open', '\t', ['a'], 'g.tsv')).toThrow(/never closed/);
  });

  it('reads a TSV in file order for validation; skips and counts a missing image and an empty caption', async () => {
    const dir = path.join(root, 'tsv');
    await mkdir(dir);
    const rows = ['filepath\ttitle'];
    for (let i = 0; i < 5; i++) {
      await writeFile(path.join(dir, `${i}.png`), await sampleImage(i));
      rows.push(`${path.join(dir, `${i}.png`)}\tcaption ${i}`);
    }
    rows.push(`${path.join(dir, 'missing.png')}\tcaption 9`, `${path.join(dir, '0.png')}\t`);
    await writeFile(path.join(dir, 'data.tsv'), rows.join('\n') + '\n');
    const m = new CsvDataModule({ valData: path.join(dir, 'data.tsv'), batchSize: 2, imageSize: 8, tokenizer: fakeTokenizer(), log: null });
    await m.setup('validate');
    const got: string[] = [];
    for await (const b of m.valDataloader()!) {
      got.push(...b.captions);
      tf.dispose([b.images, b.texts]);
    }
    expect(got).toEqual(['caption 0', 'caption 1', 'caption 2', 'caption 3', 'caption 4']);
    expect(m.skips.total).toMatchObject({ corrupt: 1, incomplete: 1 });
  });

  it('data show on a CSV with --csv_separator ","; training order is a permutation', async () => {
    const dir = path.join(root, 'csv');
    await mkdir(dir);
    const rows = ['img,cap'];
    const sha: Record<string, string> = {};
    for (let i = 0; i < 6; i++) {
      const bytes = await sampleImage(i);
      await writeFile(path.join(dir, `${i}.png`), bytes);
      rows.push(`${path.join(dir, `${i}.png`)},"caption ${i}"`);
      sha[`caption ${i}`] = createHash('sha256').update(bytes).digest('hex');
    }
    await writeFile(path.join(dir, 'd.csv'), rows.join('\n'));
    const out = await show(['--train_data', path.join(dir, 'd.csv'), '--csv_img_key', 'img', '--csv_caption_key', 'cap', '--csv_separator', ',', '--limit', '0']);
    expect(out.map((r) => r.caption).sort()).toEqual(Object.keys(sha).sort());
    for (const r of out) expect(r.sha256).toBe(sha[r.caption as string]);
    expect(out[0]!.shape).toEqual([8, 8, 3]);
  });
});

describe('lightclip data show (WebDataset)', () => {
  let spec: string;
  const sha = new Map<string, string>();
  beforeAll(async () => {
    const dir = path.join(root, 'shards');
    await mkdir(dir);
    await writeShards(dir, 8, 3);
    spec = path.join(dir, 'shard-{000..007}.tar');
    for (let id = 0; id < 24; id++) sha.set(`s${String(id).padStart(5, '0')}`, createHash('sha256').update(await sampleImage(id)).digest('hex'));
  });

  it('ranks × workers partition the epoch; keys, urls and image hashes are the written ones', async () => {
    for (const epoch of [0, 3]) {
      const seen: string[] = [];
      for (let rank = 0; rank < 2; rank++) {
        for (let worker = 0; worker < 2; worker++) {
          const rows = await show(['--train_data', spec, '--limit', '0', '--rank', String(rank), '--world_size', '2', '--worker', String(worker), '--num_workers', '2', '--epoch', String(epoch)]);
          expect(rows.length).toBe(6);
          for (const r of rows) {
            expect(r.worker).toBe(worker);
            expect(r.sha256).toBe(sha.get(r.__key__ as string));
            expect(r.__url__).toMatch(/shard-00\d\.tar$/);
            expect(r.caption).toBe(`caption ${Number((r.__key__ as string).slice(1))}`);
          }
          // Each worker reads whole shards: 2 of them.
          expect(new Set(rows.map((r) => r.__url__)).size).toBe(2);
          seen.push(...rows.map((r) => r.__key__ as string));
        }
      }
      expect(seen.sort()).toEqual([...sha.keys()].sort());
    }
  });

  it('--epoch reshuffles; the same epoch prints the same order; --limit stops early', async () => {
    const a = await show(['--train_data', spec, '--limit', '0', '--epoch', '1']);
    const b = await show(['--train_data', spec, '--limit', '0', '--epoch', '1']);
    const c = await show(['--train_data', spec, '--limit', '0', '--epoch', '2']);
    expect(a.map((r) => r.__key__)).toEqual(b.map((r) => r.__key__));
    expect(a.map((r) => r.__key__)).not.toEqual(c.map((r) => r.__key__));
    expect((await show(['--train_data', spec, '--limit', '5'])).length).toBe(5);
  });

  it('names bad flags', async () => {
    await expect(data(['show', '--limit', '3'], () => undefined)).rejects.toThrow(/--train_data/);
    await expect(data(['show', '--train_data', spec, '--rank', '2', '--world_size', '2'], () => undefined)).rejects.toThrow(/--rank/);
    await expect(data(['list'], () => undefined)).rejects.toThrow(/expected `show`/);
  });
});
