/**
 * `npm run bench -- --only=data`: samples/s decoded at 224 px (RandomResizedCrop, CLIP
 * normalisation, batches of 32, 2 loader workers) for the folder, WebDataset, CC3M and YFCC15M
 * readers over the same generated JPEGs; and the time and peak RSS of indexing a generated
 * 15M-entry yfcc15m.pkl, in a child process of its own. CC3M needs /usr/bin/python3 with numpy
 * to write its .npy (skipped with a message otherwise).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { tf } from '../../core/tf.js';
import { ClipRocketDataModule, yfccImagePath } from '../../datamodules/cliprocket.js';
import { writeYfccPickle, zipArchive } from '../../datamodules/cliprocket/fixtures.js';
import { buildYfccIndex } from '../../datamodules/cliprocket/yfccIndex.js';
import { ImageTextFolderDataModule } from '../../datamodules/folder.js';
import { ShardWriter } from '../../datamodules/stream/tarWriter.js';
import type { CaptionTokenizer } from '../../datamodules/types.js';
import { WebDatasetDataModule } from '../../datamodules/webdataset.js';
import type { LightningDataModule } from '../../core/datamodule.js';

export interface DataReaderRow {
  reader: string;
  samples: number;
  seconds: number;
  samplesPerSec: number;
}

export interface DataBenchResult {
  images: number;
  imageSize: string;
  workers: number;
  readers: DataReaderRow[];
  skipped: string[];
  yfccIndex: { entries: number; pickleMB: number; seconds: number; peakRssMB: number } | null;
}

const TOKENS: CaptionTokenizer = {
  contextLength: 77,
  tokenize: (texts, ctx = 77) => ({ ids: new Int32Array(texts.length * ctx), shape: [texts.length, ctx] }),
};

async function epochRate(name: string, dm: LightningDataModule): Promise<DataReaderRow> {
  await dm.setup('fit');
  const loader = dm.trainDataloader();
  // One warm-up batch starts the workers; the rest is timed.
  const it = loader[Symbol.asyncIterator]();
  const first = await it.next();
  if (!first.done) tf.dispose(first.value as tf.TensorContainer);
  let n = 0;
  const t0 = performance.now();
  for (let r = await it.next(); !r.done; r = await it.next()) {
    n += (r.value as { captions: string[] }).captions.length;
    tf.dispose(r.value as tf.TensorContainer);
  }
  const seconds = (performance.now() - t0) / 1000;
  await dm.teardown('fit');
  return { reader: name, samples: n, seconds, samplesPerSec: n / seconds };
}

/** Runs the data benchmarks; `entries` sizes the YFCC index test (15M by default). */
export async function benchData(options: { images?: number; entries?: number; workers?: number } = {}): Promise<DataBenchResult> {
  const count = options.images ?? 320;
  const workers = options.workers ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'lightclip-databench-'));
  const skipped: string[] = [];
  const readers: DataReaderRow[] = [];
  try {
    // The same JPEGs (640×480, noisy so they do not compress to nothing) for every reader.
    const jpegs: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const raw = Buffer.alloc(160 * 120 * 3);
      let s = i + 1;
      for (let k = 0; k < raw.length; k++) raw[k] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
      jpegs.push(await sharp(raw, { raw: { width: 160, height: 120, channels: 3 } }).resize(640, 480).jpeg({ quality: 85 }).toBuffer());
    }
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    jpegs.forEach((b, i) => {
      writeFileSync(join(folder, `${i}.jpg`), b);
      writeFileSync(join(folder, `${i}.txt`), `caption ${i}`);
    });
    const shards = join(dir, 'shards');
    mkdirSync(shards);
    const writer = new ShardWriter(join(shards, 'shard-%06d.tar'), Math.ceil(count / 4));
    for (let i = 0; i < count; i++) await writer.write({ __key__: String(i).padStart(6, '0'), files: { jpg: jpegs[i]!, txt: `caption ${i}` } });
    const sizes = await writer.close();
    writeFileSync(join(shards, 'sizes.json'), JSON.stringify(sizes));
    const shardSpec = join(shards, `shard-{000000..${String(Object.keys(sizes).length - 1).padStart(6, '0')}}.tar`);
    const yroot = join(dir, 'yfcc');
    const byZip = new Map<string, Array<[string, Uint8Array]>>();
    for (let i = 0; i < count; i++) {
      const { zip, member } = yfccImagePath(yroot, 1_000_000 + i);
      byZip.set(zip, [...(byZip.get(zip) ?? []), [member, jpegs[i]!]]);
    }
    for (const [zip, members] of byZip) {
      mkdirSync(join(zip, '..'), { recursive: true });
      writeFileSync(zip, zipArchive(members));
    }
    writeYfccPickle(join(dir, 'yfcc15m.pkl'), count, (i) => [1_000_000 + i, `title ${i}`, `desc ${i}`]);

    const common = { batchSize: 32, numWorkers: workers, imageSize: 224, seed: 0, tokenizer: TOKENS, log: null };
    readers.push(await epochRate('folder', new ImageTextFolderDataModule({ folder, ...common })));
    readers.push(await epochRate('webdataset', new WebDatasetDataModule({ trainData: shardSpec, ...common })));
    const cc = join(dir, 'cc3m.npy');
    const py = spawnSync('/usr/bin/python3', ['-c', `import numpy as np, sys\nn = int(sys.argv[2])\na = np.empty(n, dtype=object)\na[:] = [{'image_id': '%d.jpg' % i, 'captions': ['caption %d' % i]} for i in range(n)]\nnp.save(sys.argv[1], a, allow_pickle=True)`, cc, String(count)], { encoding: 'utf8' });
    if (py.status === 0) readers.push(await epochRate('cc3m (.npy)', new ClipRocketDataModule({ dataset: 'cc3m', root: folder, metadata: cc, ...common })));
    else skipped.push('cc3m: /usr/bin/python3 with numpy is needed to write the .npy');
    readers.push(await epochRate('yfcc15m (zip)', new ClipRocketDataModule({ dataset: 'yfcc15m', root: yroot, metadata: join(dir, 'yfcc15m.pkl'), ...common })));

    let yfccIndex: DataBenchResult['yfccIndex'] = null;
    const entries = options.entries ?? 15_000_000;
    if (entries > 0) {
      const pkl = join(dir, 'big.pkl');
      const self = fileURLToPath(import.meta.url);
      const gen = spawnSync(process.execPath, [self, '--generate', pkl, String(entries)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (gen.status !== 0) skipped.push(`yfcc index: generating the pickle failed: ${gen.stderr.slice(-300)}`);
      else {
        const r = spawnSync(process.execPath, [self, '--index', pkl, `${pkl}.lcidx`], { encoding: 'utf8', maxBuffer: 1 << 20 });
        const line = r.stdout.trim().split('\n').pop();
        if (r.status !== 0 || !line) skipped.push(`yfcc index failed: ${r.stderr.slice(-300)}`);
        else yfccIndex = { ...(JSON.parse(line) as { entries: number; seconds: number; peakRssMB: number }), pickleMB: statSync(pkl).size / 1e6 };
      }
    }
    return { images: count, imageSize: '640x480 JPEG → 224', workers, readers, skipped, yfccIndex };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderDataBench(d: DataBenchResult, vitB32PairsPerSec?: number): string[] {
  const lines = ['', `## Data readers (${d.images} ${d.imageSize}, batch 32, ${d.workers} loader workers; training transform)`, ''];
  lines.push('| reader | samples | s | samples/s | × ViT-B/32 training pairs/s |', '|---|---:|---:|---:|---:|');
  for (const r of d.readers) {
    const ratio = vitB32PairsPerSec ? (r.samplesPerSec / vitB32PairsPerSec).toFixed(1) : '–';
    lines.push(`| ${r.reader} | ${r.samples} | ${r.seconds.toFixed(2)} | ${r.samplesPerSec.toFixed(1)} | ${ratio} |`);
  }
  if (d.yfccIndex) {
    const y = d.yfccIndex;
    lines.push('', `YFCC15M index: ${y.entries.toLocaleString('en-US')} entries (${y.pickleMB.toFixed(0)} MB pickle) indexed in ${y.seconds.toFixed(1)} s, peak RSS ${y.peakRssMB.toFixed(0)} MB (own process).`);
  }
  for (const s of d.skipped) lines.push(`- skipped: ${s}`);
  return lines;
}

// Child modes: generate a big pickle (untimed), or index it (timed, peak RSS).
if (process.argv[2] === '--generate') {
  writeYfccPickle(process.argv[3]!, Number(process.argv[4]), (i) => [i, `t${i % 1000}`, i % 7 === 0 ? '' : `desc ${i}`]);
} else if (process.argv[2] === '--index') {
  const t0 = performance.now();
  const entries = buildYfccIndex(process.argv[3]!, process.argv[4]!);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ entries, seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
}
