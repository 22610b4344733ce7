import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as data } from '../../../commands/data.js';
import { cleanCorenetCaption, parseCorenetSample } from '../../../datamodules/corenet.js';
import { extractTarSafely, UnsafeArchiveError } from '../../../datamodules/corenet/extract.js';
import { tarMember, TAR_END } from '../../../datamodules/stream/tarWriter.js';
import { removeDir, tempDir } from '../helpers.js';
import { python, runPython, sampleImage } from './fixtures.js';

/** A protocol-2 pickle of a dict of str / bytes / int / list-of-str values (what CoreNet's pickles hold). */
function pickleDict(obj: Record<string, string | Uint8Array | number | string[]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80, 2, 0x7d, 0x28])];
  const str = (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  for (const [k, v] of Object.entries(obj)) {
    parts.push(str(k));
    if (typeof v === 'string') parts.push(str(v));
    else if (typeof v === 'number') {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      parts.push(b);
    } else if (Array.isArray(v)) parts.push(Buffer.from([0x5d, 0x28]), ...v.map(str), Buffer.from([0x65]));
    else {
      const h = Buffer.alloc(5);
      h[0] = 0x42;
      h.writeUInt32LE(v.length, 1);
      parts.push(h, Buffer.from(v));
    }
  }
  parts.push(Buffer.from([0x75, 0x2e])); // SETITEMS, STOP
  return Buffer.concat(parts);
}

let root: string;
beforeAll(async () => {
  root = await tempDir('lightclip-corenet-');
});
afterAll(() => removeDir(root));

async function show(args: string[]): Promise<Array<Record<string, unknown>>> {
  const lines: string[] = [];
  expect(await data(['show', ...args, '--json', '--image_size', '8', '--limit', '0'], (l) => lines.push(l))).toBe(0);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('CoreNet img_text_tar', () => {
  it('cleans captions and parses sample pickles strictly', async () => {
    expect(cleanCorenetCaption('A+%3Cb%3EBold%3C%2Fb%3E Photo')).toBe('a bold photo');
    const img = await sampleImage(1);
    const ok = parseCorenetSample(pickleDict({ image: Buffer.from(img).toString('base64'), texts: ['One', 'Two'] }), 's.pkl');
    expect(Buffer.from(ok.image).equals(img)).toBe(true);
    expect(ok.captions).toEqual(['one', 'two']);
    expect(() => parseCorenetSample(pickleDict({ image: Buffer.from(img).toString('base64').replace(/(.{20})/, '$1\n'), text: 'x' }), 's.pkl')).toThrow(/strict base64/);
    const evil = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cposix\nsystem\n', 'latin1'), Buffer.from([0x2e])]);
    expect(() => parseCorenetSample(evil, 'evil.pkl')).toThrow(/evil\.pkl.*`posix\.system`.*Nothing was executed/s);
  });

  it('reads metadata.pkl and archives (extracted once into the cache), oversampling a missing file', async () => {
    const dir = path.join(root, 'ds');
    await mkdir(dir);
    await writeFile(path.join(dir, 'metadata.pkl'), pickleDict({ total_tar_files: 2, max_files_per_tar: 3, tar_file_names: ['0.tar.gz', '1.tar.gz'] }));
    const b64 = async (i: number): Promise<string> => Buffer.from(await sampleImage(i)).toString('base64');
    const members = async (folder: number, ids: number[]): Promise<Buffer> =>
      gzipSync(Buffer.concat([...(await Promise.all(ids.map(async (i) => tarMember(`${folder}/${i}.pkl`, pickleDict({ image: await b64(i), text: `Caption+${i}` }))))), TAR_END]));
    await writeFile(path.join(dir, '0.tar.gz'), await members(0, [0, 1, 2]));
    await writeFile(path.join(dir, '1.tar.gz'), await members(1, [3, 5]));
    const cache = path.join(root, 'cache');
    const prev = process.cwd();
    await mkdir(cache);
    process.chdir(cache);
    try {
      const rows = await show(['--dataset_type', 'img_text_tar', '--metadata', path.join(dir, 'metadata.pkl')]);
      expect(rows.map((r) => r.__key__).sort()).toEqual(['0', '1', '2', '3', '4', '5']);
      const r4 = rows.find((r) => r.__key__ === '4')!;
      expect(r4.__url__).toMatch(/\.corenet_data_cache\/1\/[35]\.pkl$/);
      for (const r of rows.filter((x) => x.__key__ !== '4')) expect(r.caption).toBe(`caption ${r.__key__}`);
      expect(existsSync(path.join(cache, '.corenet_data_cache', '0', '2.pkl'))).toBe(true);
    } finally {
      process.chdir(prev);
    }
  });

  if (!python(['pickle'])) console.log('skipped: /usr/bin/python3 is not available');
  it.skipIf(!python(['pickle']))('reads sample pickles written by Python, protocols 2, 3, 4 (skips without python3)', async () => {
    const img = await sampleImage(2);
    await writeFile(path.join(root, 'img.png'), img);
    for (const p of [2, 3, 4]) {
      const f = path.join(root, `py${p}.pkl`);
      runPython(`import pickle, sys, base64; pickle.dump({'image': base64.b64encode(open(sys.argv[2], 'rb').read()), 'texts': ['Hello <i>World</i>', 'b+c']}, open(sys.argv[1], 'wb'), protocol=${p})`, [f, path.join(root, 'img.png')]);
      const { readFile } = await import('node:fs/promises');
      const s = parseCorenetSample(await readFile(f), f);
      expect(Buffer.from(s.image).equals(img)).toBe(true);
      expect(s.captions).toEqual(['hello world', 'b c']);
    }
  }, 30_000);

  it('refuses archive members that escape the cache: "..", absolute paths, escaping links', async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['dotdot', Buffer.concat([tarMember('0/../../evil.txt', Buffer.from('x')), TAR_END]), /'\.\.' in the path/],
      ['abs', Buffer.concat([tarMember('/tmp/evil.txt', Buffer.from('x')), TAR_END]), /absolute path/],
    ];
    if (python(['tarfile'])) {
      const f = path.join(root, 'link.tar');
      runPython(
        `import tarfile, sys
with tarfile.open(sys.argv[1], 'w') as t:
    i = tarfile.TarInfo('0/escape'); i.type = tarfile.SYMTYPE; i.linkname = '../../../etc/passwd'; t.addfile(i)`,
        [f],
      );
      const { readFile } = await import('node:fs/promises');
      cases.push(['link', await readFile(f), /link to "\.\.\/\.\.\/\.\.\/etc\/passwd" leads outside/]);
    } else console.log('symlink case skipped: /usr/bin/python3 with tarfile is not available');
    for (const [name, tar, why] of cases) {
      const archive = path.join(root, `${name}.tar.gz`);
      await writeFile(archive, gzipSync(tar));
      const dest = path.join(root, 'x', name);
      await expect(extractTarSafely(archive, dest)).rejects.toThrow(UnsafeArchiveError);
      await expect(extractTarSafely(archive, dest)).rejects.toThrow(why);
    }
    expect(existsSync(path.join(root, 'evil.txt'))).toBe(false);
    expect(existsSync(path.join(root, 'x', 'evil.txt'))).toBe(false);
  });
});
