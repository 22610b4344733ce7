import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { braceExpand, expandShardUrls } from '../../../datamodules/stream/shardUrls.js';
import { readTar, TarFormatError } from '../../../datamodules/stream/tarReader.js';
import { tarArchive, tarMember, TAR_END } from '../../../datamodules/stream/tarWriter.js';
import { groupSamples, shardSamples, splitKey } from '../../../datamodules/stream/wdsSamples.js';
import { removeDir, tempDir } from '../helpers.js';
import { python, runPython } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('lightclip-tar-');
});
afterAll(() => removeDir(dir));

async function entries(buf: Buffer, chunk = 700): Promise<Array<{ name: string; type: string; data: string }>> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  const out = [];
  for await (const e of readTar(Readable.from(chunks), 'x.tar')) out.push({ name: e.name, type: e.type, data: e.data.toString() });
  return out;
}

describe('brace expansion (Python braceexpand semantics)', () => {
  it('expands ranges with zero padding, lists, steps and nesting', () => {
    expect(braceExpand('a{000..003}.tar')).toEqual(['a000.tar', 'a001.tar', 'a002.tar', 'a003.tar']);
    expect(braceExpand('{8..11}')).toEqual(['8', '9', '10', '11']);
    expect(braceExpand('{08..11}')).toEqual(['08', '09', '10', '11']);
    expect(braceExpand('{1..9..4}')).toEqual(['1', '5', '9']);
    expect(braceExpand('{a,b{1..2}}x')).toEqual(['ax', 'b1x', 'b2x']);
    expect(braceExpand('{c..a}')).toEqual(['c', 'b', 'a']);
    expect(braceExpand('plain{x}')).toEqual(['plain{x}']);
  });
  it('splits :: sources and substitutes ${X} (WDS_X first)', () => {
    const env = { WDS_ROOT: '/w', ROOT: '/plain', B: 'b' } as NodeJS.ProcessEnv;
    expect(expandShardUrls('${ROOT}/{0..1}.tar::${B}/x.tar', '--train_data', env)).toEqual(['/w/0.tar', '/w/1.tar', 'b/x.tar']);
    expect(() => expandShardUrls('${NOPE}/a.tar', '--train_data', {})).toThrow(/\$\{NOPE\} is not set/);
  });
});

describe('tar reader', () => {
  it('reads our ustar + pax long names, in any chunking', async () => {
    const long = 'd/'.repeat(60) + 'name.with.dots.txt';
    const buf = tarArchive([['a.txt', 'A'], [long, 'L'], ['b.bin', new Uint8Array(1000).fill(7)]]);
    for (const chunk of [1, 511, 512, 700, 1 << 20]) {
      const got = await entries(buf, chunk);
      expect(got.map((e) => e.name)).toEqual(['a.txt', long, 'b.bin']);
      expect(got[1]!.data).toBe('L');
    }
  });

  it('reports a truncated member and a truncated header, naming the archive and member', async () => {
    const buf = tarArchive([['a.txt', 'A'], ['big.bin', new Uint8Array(3000)]]);
    await expect(entries(buf.subarray(0, 512 * 2 + 512 + 1000))).rejects.toThrow(/x\.tar: truncated: member "big\.bin" should have 3000 bytes/);
    await expect(entries(buf.subarray(0, 512 * 2 + 100))).rejects.toThrow(/ends inside a header/);
    await expect(entries(Buffer.from('not a tar at all'.repeat(40)))).rejects.toThrow(TarFormatError);
  });

  if (!python(['tarfile'])) console.log('skipped: /usr/bin/python3 with tarfile is not available');
  it.skipIf(!python(['tarfile']))('reads GNU long names, pax and ustar prefixes written by Python tarfile (skips without python3)', async () => {
    const out = path.join(dir, 'py');
    const long = 'deep/'.repeat(30) + 'k1.seg.png';
    runPython(
      `import tarfile, io, sys
for fmt, name in [(tarfile.GNU_FORMAT, 'gnu'), (tarfile.PAX_FORMAT, 'pax'), (tarfile.USTAR_FORMAT, 'ustar')]:
    with tarfile.open(sys.argv[1] + name + '.tar', 'w', format=fmt) as t:
        names = [sys.argv[2], 'p/' * 40 + 'k2.txt'] if name != 'ustar' else ['a' * 90 + '/' + 'b' * 60 + '.txt']
        for n in names:
            data = n.encode()
            info = tarfile.TarInfo(n); info.size = len(data); t.addfile(info, io.BytesIO(data))
        d = tarfile.TarInfo('dir'); d.type = tarfile.DIRTYPE; t.addfile(d)`,
      [out, long],
    );
    const { readFile } = await import('node:fs/promises');
    const gnu = await entries(await readFile(out + 'gnu.tar'));
    expect(gnu.filter((e) => e.type === '0').map((e) => e.name)).toEqual([long, 'p/'.repeat(40) + 'k2.txt']);
    expect(gnu[0]!.data).toBe(long);
    const pax = await entries(await readFile(out + 'pax.tar'));
    expect(pax.filter((e) => e.type === '0').map((e) => e.data)).toEqual([long, 'p/'.repeat(40) + 'k2.txt']);
    const ustar = await entries(await readFile(out + 'ustar.tar'));
    expect(ustar[0]!.name).toBe('a'.repeat(90) + '/' + 'b'.repeat(60) + '.txt');
    expect(ustar.find((e) => e.name === 'dir')!.type).toBe('5');
  });
});

describe('WebDataset grouping', () => {
  it('base_plus_ext: key up to the first dot of the last component, extension lower-cased', () => {
    expect(splitKey('a/b.c/x.seg.PNG')).toEqual({ key: 'a/b.c/x', ext: 'seg.png' });
    expect(splitKey('noext')).toBeNull();
  });

  it('groups by key, splits on a repeated extension, skips __*__ and non-files', async () => {
    const buf = Buffer.concat([
      tarMember('__meta__/info.json', Buffer.from('{}')), // skipped by webdataset's meta rule
      tarMember('k1.jpg', Buffer.from('i1')),
      tarMember('k1.txt', Buffer.from('t1')),
      tarMember('k1.txt', Buffer.from('t1b')), // repeated extension → new sample, same key
      tarMember('k2.TXT', Buffer.from('t2')),
      tarMember('README', Buffer.from('x')),
      TAR_END,
    ]);
    const samples = [];
    for await (const s of groupSamples(readTar(Readable.from([buf]), 'u'), 'u')) samples.push({ key: s.__key__, url: s.__url__, exts: [...s.files.keys()] });
    expect(samples).toEqual([
      { key: 'k1', url: 'u', exts: ['jpg', 'txt'] },
      { key: 'k1', url: 'u', exts: ['txt'] },
      { key: 'k2', url: 'u', exts: ['txt'] },
    ]);
  });

  it('reads .tar.gz by magic; a gzip that ends early fails after the samples before it', async () => {
    const members = Array.from({ length: 40 }, (_, i) => [`k${i}.txt`, 'x'.repeat(2000) + i] as [string, string]);
    const gz = gzipSync(tarArchive(members));
    const good = path.join(dir, 'g.tar.gz');
    await writeFile(good, gz);
    let n = 0;
    for await (const _ of shardSamples(good)) n++;
    expect(n).toBe(40);
    const cut = path.join(dir, 'cut.tar.gz');
    await writeFile(cut, gz.subarray(0, Math.floor(gz.length / 2)));
    let m = 0;
    await expect(
      (async () => {
        for await (const _ of shardSamples(cut)) m++;
      })(),
    ).rejects.toThrow(/cut\.tar\.gz: (gzip: unexpected end of file|truncated)/);
    expect(m).toBeGreaterThan(0);
    expect(m).toBeLessThan(40);
  });
});
