import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as data } from '../../../commands/data.js';
import { PickleDict, UnsafePickleError } from '../../../core/pickle/types.js';
import { cleanYfccCaption, yfccCandidates } from '../../../datamodules/cliprocket/captions.js';
import { writeYfccPickle, zipArchive } from '../../../datamodules/cliprocket/fixtures.js';
import { readNpyObjectArray } from '../../../datamodules/cliprocket/npy.js';
import { buildYfccIndex, YfccIndex } from '../../../datamodules/cliprocket/yfccIndex.js';
import { ClipRocketDataModule, yfccImagePath } from '../../../datamodules/cliprocket.js';
import { tf } from '../../../core/tf.js';
import { fakeTokenizer, removeDir, tempDir } from '../helpers.js';
import { python, runPython } from './fixtures.js';
import { sampleImage } from './fixtures.js';

let root: string;
beforeAll(async () => {
  root = await tempDir('lightclip-cr-');
});
afterAll(() => removeDir(root));

async function show(args: string[]): Promise<Array<Record<string, unknown>>> {
  const lines: string[] = [];
  expect(await data(['show', ...args, '--json', '--image_size', '8', '--limit', '0'], (l) => lines.push(l))).toBe(0);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

function plain(v: unknown): unknown {
  if (v instanceof PickleDict) return Object.fromEntries([...v.entries].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

const NPY_WRITER = `
import numpy as np, sys, json
from numpy.lib import format as fmt
out, proto, ver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = [
  {'image_id': 'a/0.png', 'captions': ['caption 0', 'zero']},
  {'image_id': np.int64(1), 'captions': [np.str_('caption 1')]},
  {'image_id': 'a/2.png', 'image_name': 'a/2.png', 'captions': ['caption 2 é', np.str_('')]},
]
arr = np.empty(len(items), dtype=object)
arr[:] = items
import pickle
with open(out, 'wb') as f:
    d = fmt.header_data_from_array_1_0(arr)
    (fmt.write_array_header_1_0 if ver == 1 else fmt.write_array_header_2_0)(f, d)
    pickle.dump(arr, f, protocol=proto)
# numpy itself must read it back
assert np.load(out, allow_pickle=True)[0]['captions'][1] == 'zero'
`;

describe('.npy object arrays (clip-rocket CC3M/CC12M) through the restricted unpickler', () => {
  const hasNumpy = python(['numpy']) !== null;

  if (!hasNumpy) console.log('skipped: /usr/bin/python3 with numpy is not available');
  it.skipIf(!hasNumpy)('reads numpy-written files for pickle protocols 2, 3, 4 and .npy v1, v2 (skips without numpy)', async () => {
    for (const [proto, ver] of [[2, 1], [3, 1], [4, 2], [2, 2]] as const) {
      const file = path.join(root, `cc-${proto}-${ver}.npy`);
      runPython(NPY_WRITER, [file, String(proto), String(ver)]);
      const items = plain(await readNpyObjectArray(file));
      expect(items).toEqual([
        { image_id: 'a/0.png', captions: ['caption 0', 'zero'] },
        { image_id: 1, captions: ['caption 1'] },
        { image_id: 'a/2.png', image_name: 'a/2.png', captions: ['caption 2 é', ''] },
      ]);
    }
  });

  if (!hasNumpy) console.log('skipped: /usr/bin/python3 with numpy is not available');
  it.skipIf(!hasNumpy)('refuses a non-object array and a pickle with a disallowed global, executing nothing (skips without numpy)', async () => {
    const floats = path.join(root, 'floats.npy');
    runPython('import numpy as np, sys; np.save(sys.argv[1], np.zeros(3))', [floats]);
    await expect(readNpyObjectArray(floats)).rejects.toThrow(/floats\.npy: expected an object array \(descr '\|O'.*got descr "<f8"/);
    const evil = path.join(root, 'evil.npy');
    const marker = path.join(root, 'pwned');
    runPython(
      `import numpy as np, sys, os
class E:
    def __reduce__(self): return (os.system, ('touch ' + sys.argv[2],))
arr = np.empty(1, dtype=object); arr[0] = {'image_id': E(), 'captions': []}
np.save(sys.argv[1], arr, allow_pickle=True)`,
      [evil, marker],
    );
    await expect(readNpyObjectArray(evil)).rejects.toThrow(UnsafePickleError);
    await expect(readNpyObjectArray(evil)).rejects.toThrow(/evil\.npy.*`(posix|os)\.system`.*Nothing was executed/s);
    expect(existsSync(marker)).toBe(false);
  });

  if (!hasNumpy) console.log('skipped: /usr/bin/python3 with numpy is not available');
  it.skipIf(!hasNumpy)('--dataset cc3m --root --metadata: every sample with its image and a caption from its list (skips without numpy)', async () => {
    const dir = path.join(root, 'cc3m');
    await mkdir(path.join(dir, 'a'), { recursive: true });
    const sha: string[] = [];
    for (let i = 0; i < 3; i++) {
      const img = await sampleImage(i);
      sha.push(createHash('sha256').update(img).digest('hex'));
      await writeFile(path.join(dir, i === 1 ? '1' : `a/${i}.png`), img);
    }
    const meta = path.join(dir, 'cc3m.npy');
    runPython(NPY_WRITER, [meta, '3', '1']);
    const rows = await show(['--dataset', 'cc3m', '--root', dir, '--metadata', meta, '--split', 'train']);
    expect(rows.length).toBe(3);
    for (const r of rows) {
      const i = r.__key__ === '1' ? 1 : Number(/a\/(\d)/.exec(r.__key__ as string)![1]);
      expect(r.sha256).toBe(sha[i]);
      expect(r.caption).toMatch(new RegExp(`^(caption ${i}( é)?|zero)$`));
    }
  });
});

describe('merged_opendata', () => {
  if (!python(['numpy'])) console.log('skipped: /usr/bin/python3 with numpy is not available');
  it.skipIf(!python(['numpy']))('joins cc3m, cc12m and yfcc15m (metadata and roots with ---), in that order of indices (skips without numpy)', async () => {
    const dir = path.join(root, 'merged');
    const parts = ['cc3m', 'cc12m', 'yfcc'].map((p) => path.join(dir, p));
    for (const p of parts) await mkdir(p, { recursive: true });
    await writeFile(path.join(parts[0]!, 'a.png'), await sampleImage(0));
    await writeFile(path.join(parts[1]!, 'b.png'), await sampleImage(1));
    runPython(
      `import numpy as np, sys
def save(path, items):
    a = np.empty(len(items), dtype=object); a[:] = items; np.save(path, a, allow_pickle=True)
save(sys.argv[1], [{'image_id': 'a.png', 'captions': ['from cc3m']}])
save(sys.argv[2], [{'image_id': 7, 'image_name': 'b.png', 'captions': ['from cc12m']}])`,
      [path.join(dir, 'cc3m.npy'), path.join(dir, 'cc12m.npy')],
    );
    const { zip, member } = yfccImagePath(parts[2]!, 42);
    await mkdir(path.dirname(zip), { recursive: true });
    await writeFile(zip, zipArchive([[member, await sampleImage(2)]]));
    writeYfccPickle(path.join(dir, 'y.pkl'), 1, () => [42, 'from+yfcc', '']);
    const rows = await show(['--dataset', 'merged_opendata', '--root', parts.join('---'), '--metadata', ['cc3m.npy', 'cc12m.npy', 'y.pkl'].map((f) => path.join(dir, f)).join('---')]);
    expect(rows.map((r) => r.caption).sort()).toEqual(['from cc12m', 'from cc3m', 'from yfcc']);
    await expect(show(['--dataset', 'merged_opendata', '--root', dir, '--metadata', path.join(dir, 'cc3m.npy')])).rejects.toThrow(/three `---`-joined/);
  });
});

describe('YFCC15M', () => {
  it("cleans captions as SLIP's make_dataset.py", () => {
    expect(cleanYfccCaption('A+walk+in+the+%22park%22+%C3%A9')).toBe('A walk in the "park" é');
    expect(cleanYfccCaption('see <a href="x">my</a> <b>photo</b> http://x.y/z www.a.b')).toBe('see my photo  ');
    expect(yfccCandidates('', '')).toEqual(['']);
    expect(yfccCandidates('t', '')).toEqual(['t']);
  });

  it('maps indices to images/d[0:2]/d[2:5].zip member d[5:8].jpg', () => {
    expect(yfccImagePath('/r', 1234567)).toEqual({ zip: path.join('/r', 'images', '01', '234.zip'), member: '567.jpg' });
    expect(() => yfccImagePath('/r', 1e8)).toThrow(/10\^8/);
  });

  it('indexes a generated pickle (our protocol 2/4 writer and Python pickle) and reads entries back', async () => {
    const entries = (i: number): [number, string, string] => [i * 7, i % 3 === 0 ? '' : `title ${i}`, i % 5 === 0 ? 'd' : `déscription ${i}`];
    const files: string[] = [];
    for (const protocol of [2, 4] as const) {
      const f = path.join(root, `y${protocol}.pkl`);
      writeYfccPickle(f, 2500, entries, { protocol });
      files.push(f);
    }
    if (python()) {
      const f = path.join(root, 'ypy.pkl');
      runPython(
        `import pickle, sys
rows = [(i * 7, '' if i % 3 == 0 else 'title %d' % i, 'd' if i % 5 == 0 else 'déscription %d' % i) for i in range(2500)]
for p in (2, 4):
    pickle.dump(rows, open(sys.argv[1] + str(p), 'wb'), protocol=p)`,
        [f],
      );
      files.push(f + '2', f + '4');
    } else console.log('Python pickle fixtures skipped: /usr/bin/python3 is not available');
    for (const f of files) {
      const idx = YfccIndex.open(f, f + '.lcidx', null);
      expect(idx.count).toBe(2500);
      for (const i of [0, 1, 5, 999, 1000, 2499]) {
        const [index, title, desc] = entries(i);
        expect(idx.entry(i)).toEqual({ index, title, desc });
      }
      idx.close();
    }
  });

  it('refuses a pickle with a global, and a truncated one, naming the file', async () => {
    const evil = path.join(root, 'evil.pkl');
    // PROTO 2, GLOBAL 'os system', ...
    await writeFile(evil, Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cos\nsystem\n', 'latin1'), Buffer.from([0x2e])]));
    expect(() => buildYfccIndex(evil, evil + '.lcidx')).toThrow(UnsafePickleError);
    const good = path.join(root, 'cut.pkl');
    writeYfccPickle(good, 50, (i) => [i, `t${i}`, `d${i}`]);
    const { readFile } = await import('node:fs/promises');
    await writeFile(good, (await readFile(good)).subarray(0, 300));
    expect(() => buildYfccIndex(good, good + '.lcidx')).toThrow(/cut\.pkl: truncated/);
  });

  it('--dataset yfcc15m: images from stored and deflated zips; a bad CRC and a missing zip are skipped and counted', async () => {
    const dir = path.join(root, 'yfcc');
    const ids = [1000001, 1000002, 1000003, 2005004, 3006005];
    const sha = new Map<string, string>();
    const byZip = new Map<string, Array<[string, Uint8Array]>>();
    for (const [k, id] of ids.entries()) {
      const { zip, member } = yfccImagePath(dir, id);
      const img = await sampleImage(k);
      sha.set(String(id), createHash('sha256').update(img).digest('hex'));
      if (id === 3006005) continue; // its zip is missing
      byZip.set(zip, [...(byZip.get(zip) ?? []), [member, img]]);
    }
    let n = 0;
    for (const [zip, members] of byZip) {
      await mkdir(path.dirname(zip), { recursive: true });
      await writeFile(zip, zipArchive(members, { deflate: n++ % 2 === 0, badCrc: ['004.jpg'] }));
    }
    const meta = path.join(dir, 'yfcc15m.pkl');
    writeYfccPickle(meta, ids.length, (i) => [ids[i]!, `Title+${i}`, i === 1 ? '' : `<b>desc</b> ${i}`]);
    const lines: string[] = [];
    const rows = await show(['--dataset', 'yfcc15m', '--root', dir, '--metadata', meta, '--split', 'train']);
    expect(rows.map((r) => r.__key__).sort()).toEqual(['1000001', '1000002', '1000003']);
    for (const r of rows) {
      expect(r.sha256).toBe(sha.get(r.__key__ as string));
      const i = ids.indexOf(Number(r.__key__));
      expect([`Title ${i}`, `desc ${i}`]).toContain(r.caption);
    }
    const dm = new ClipRocketDataModule({ dataset: 'yfcc15m', root: dir, metadata: meta, batchSize: 1, imageSize: 8, tokenizer: fakeTokenizer(), log: (l) => lines.push(l) });
    await dm.setup('fit');
    let n2 = 0;
    for await (const b of dm.trainDataloader()) {
      n2 += b.captions.length;
      tf.dispose([b.images, b.texts]);
    }
    await dm.teardown('fit');
    expect(n2).toBe(3);
    expect(dm.skips.total.corrupt).toBe(2);
    expect(lines.some((l) => /004\.jpg.*fails its CRC-32 check/.test(l))).toBe(true);
    expect(lines.some((l) => /skipped 2 corrupt samples/.test(l))).toBe(true);
  });
});
