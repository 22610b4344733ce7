/**
 * `npm run bench -- --only=deeplake`: reading speed of the Deep Lake DataModule.
 *
 * - Samples/s decoded at 224 px (RandomResizedCrop, CLIP tokenizer, 2 decode workers, batch
 *   32) from the same JPEGs as: a folder (ImageTextFolderDataModule), a local Deep Lake
 *   dataset, and that dataset on the loopback S3 server (started in the measuring process).
 *   The second of two epochs is timed (page cache warm; the Deep Lake chunk LRU is not).
 * - 1M text-only samples (TEXT + NSFW, 1 MB chunks): streamed in shuffled chunk order through
 *   the DataModule's read path, then the `--filter_NSFW` scan; samples/s and peak RSS.
 *
 * Each measurement runs in its own Node process (its peak RSS is its own).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export interface DeeplakeBenchRow {
  name: string;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  peakRssMB: number;
  note?: string;
}

export interface DeeplakeBenchResult {
  rows: DeeplakeBenchRow[];
  error?: string;
}

const peakRssMB = (): number => process.resourceUsage().maxRSS / 1024;

/** Synthetic photos: smooth gradients plus texture (JPEG sizes like real 256 px images). */
async function makeFolder(dir: string, n: number): Promise<void> {
  await fs.mkdir(path.join(dir, 'images'), { recursive: true });
  await fs.mkdir(path.join(dir, 'captions'), { recursive: true });
  const w = 320;
  const h = 256;
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(w * h * 3);
    const noise = randomBytes(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        px[o] = (x + i * 7) & 255;
        px[o + 1] = (y * 2 + i * 3) & 255;
        px[o + 2] = ((x ^ y) + (noise[y * w + x]! >> 3)) & 255;
      }
    }
    await fs.writeFile(path.join(dir, 'images', `${i}.jpg`), await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
    await fs.writeFile(path.join(dir, 'captions', `${i}.txt`), `a synthetic photo number ${i} with gradients\n`);
  }
}

/** A dataset of `n` text samples (TEXT + NSFW) written chunk by chunk with the format encoders. */
async function makeTextDataset(dir: string, n: number): Promise<void> {
  const { serializeChunk, serializeChunkIndex } = await import('../../datamodules/deeplake/format.js');
  const { WRITER_VERSION } = await import('../../datamodules/deeplake/meta.js');
  const words = ['a', 'photo', 'of', 'the', 'cat', 'sunset', 'over', 'mountains', 'vintage', 'poster', 'red', 'car'];
  const labels = ['UNLIKELY', 'UNLIKELY', 'UNLIKELY', 'UNSURE', 'NSFW'];
  const tensors = { TEXT: (i: number) => Array.from({ length: 4 + (i % 9) }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' '), NSFW: (i: number) => labels[(i * 2654435761) % 5]! };
  for (const [name, gen] of Object.entries(tensors)) {
    const ids: bigint[] = [];
    const lasts: number[] = [];
    let parts: Buffer[] = [];
    let bytes = 0;
    let first = 0;
    const flush = async (last: number): Promise<void> => {
      const byteRows: number[][] = [];
      let off = 0;
      parts.forEach((p, local) => {
        const prev = byteRows[byteRows.length - 1];
        if (prev && prev[0] === p.length) prev[2] = local;
        else byteRows.push([p.length, off, local]);
        off += p.length;
      });
      const id = randomBytes(8).readBigUInt64LE(0) | 1n;
      await fs.mkdir(path.join(dir, name, 'chunks'), { recursive: true });
      await fs.writeFile(path.join(dir, name, 'chunks', id.toString(16)), serializeChunk(WRITER_VERSION, [[1, last - first]], byteRows, Buffer.concat(parts)));
      ids.push(id);
      lasts.push(last);
      parts = [];
      bytes = 0;
      first = last + 1;
    };
    for (let i = 0; i < n; i++) {
      const b = Buffer.from(gen(i));
      parts.push(b);
      bytes += b.length;
      if (bytes >= 1_000_000) await flush(i);
    }
    if (parts.length) await flush(n - 1);
    await fs.mkdir(path.join(dir, name, 'chunks_index'), { recursive: true });
    await fs.writeFile(path.join(dir, name, 'chunks_index', 'unsharded'), serializeChunkIndex(WRITER_VERSION, ids, lasts));
    await fs.writeFile(path.join(dir, name, 'tensor_meta.json'), JSON.stringify({ htype: 'text', dtype: 'str', typestr: null, length: n, min_shape: [1], max_shape: [1], sample_compression: null, chunk_compression: null, max_chunk_size: null, tiling_threshold: null, hidden: false, links: {}, is_sequence: false, is_link: false, verify: true, version: WRITER_VERSION, name }));
  }
  await fs.writeFile(path.join(dir, 'dataset_meta.json'), JSON.stringify({ version: WRITER_VERSION, tensors: ['TEXT', 'NSFW'], groups: [], tensor_names: { TEXT: 'TEXT', NSFW: 'NSFW' }, hidden_tensors: [], allow_delete: true }));
}

/** One epoch measurement in this process; prints JSON. */
async function child(mode: string, dataDir: string, epochs: number): Promise<void> {
  if (mode === 'text1m') {
    const { DeepLakeDataset } = await import('../../datamodules/deeplake/dataset.js');
    const { LocalStorage } = await import('../../datamodules/storage/local.js');
    const { buildUnits, planEpoch, rankStream } = await import('../../datamodules/deeplake/stream.js');
    const { selectIndices, NSFW_QUERY } = await import('../../datamodules/deeplake/query.js');
    const ds = await DeepLakeDataset.open(new LocalStorage(dataDir), { cacheBytes: 64e6 });
    const text = ds.tensor('TEXT');
    const dec = new TextDecoder();
    const t0 = performance.now();
    const units = buildUnits(text, ds.length, null);
    const plan = planEpoch(units, { shuffle: true, seed: 0, epoch: 0, worldSize: 1 });
    let n = 0;
    let chars = 0;
    for (const [i] of rankStream(units, null, plan.perRank[0]!, plan.length, { shuffle: true, seed: 0, epoch: 0, rank: 0, shuffleBuffer: 2048 })) {
      chars += dec.decode((await text.raw(i)).bytes).length;
      n++;
    }
    const stream = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const kept = await selectIndices(ds, NSFW_QUERY, { cacheDir: null });
    const scan = (performance.now() - t1) / 1000;
    console.log(JSON.stringify({ samples: n, seconds: stream, scanSeconds: scan, kept: kept.length, chars, peakRssMB: peakRssMB() }));
    return;
  }
  const { tf } = await import('../../core/tf.js');
  const { ClipTokenizer } = await import('../../modules/tokenizers/clipTokenizer.js');
  const tokenizer = ClipTokenizer.default();
  let stop = async (): Promise<void> => {};
  let dm: { setup(s: 'fit'): Promise<void>; trainDataloader(): AsyncIterable<{ images: unknown; texts: unknown; captions: string[] }> & { setEpoch?(e: number): void }; teardown(s: 'fit'): Promise<void> };
  const common = { batchSize: 32, numWorkers: 2, imageSize: 224, tokenizer, seed: 0, log: null };
  if (mode === 'folder') {
    const { ImageTextFolderDataModule } = await import('../../datamodules/folder.js');
    dm = new ImageTextFolderDataModule({ folder: path.join(dataDir, 'folder'), ...common });
  } else {
    const { DeepLakeDataModule } = await import('../../datamodules/deeplake/datamodule.js');
    let where = path.join(dataDir, 'ds');
    if (mode === 'deeplake-s3') {
      const { LoopbackS3 } = await import('./loopbackServers.js');
      const s3 = await new LoopbackS3({ bench: dataDir }).start();
      s3.keys.set('AKIABENCH', {});
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIABENCH', AWS_SECRET_ACCESS_KEY: 'x', AWS_ENDPOINT_URL_S3: s3.url, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' });
      where = 's3://bench/ds';
      stop = () => s3.stop();
    }
    dm = new DeepLakeDataModule({ path: where, ...common });
  }
  await dm.setup('fit');
  const loader = dm.trainDataloader();
  let n = 0;
  let seconds = 0;
  for (let e = 0; e < epochs; e++) {
    loader.setEpoch?.(e);
    const t0 = performance.now();
    n = 0;
    for await (const b of loader) {
      n += b.captions.length;
      tf.dispose([b.images as never, b.texts as never]);
    }
    seconds = (performance.now() - t0) / 1000;
  }
  await dm.teardown('fit');
  await stop();
  console.log(JSON.stringify({ samples: n, seconds, peakRssMB: peakRssMB() }));
}

function runChild(args: string[]): Record<string, number> | null {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--deeplake-child', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !line) {
    console.warn(`  deeplake bench child ${args[0]} failed:\n${r.stderr?.slice(-2000)}`);
    return null;
  }
  return JSON.parse(line) as Record<string, number>;
}

export async function benchDeeplake(options: { quick?: boolean } = {}): Promise<DeeplakeBenchResult> {
  const root = mkdtempSync(path.join(tmpdir(), 'lightclip-bench-deeplake-'));
  const rows: DeeplakeBenchRow[] = [];
  try {
    const images = options.quick ? 128 : 512;
    console.log(`Deep Lake: writing ${images} JPEGs (320x256) as a folder and as a dataset...`);
    await makeFolder(path.join(root, 'folder'), images);
    const { convertFolder } = await import('../../datamodules/deeplake/convert.js');
    await convertFolder({ folder: path.join(root, 'folder'), out: path.join(root, 'ds'), log: null });
    const rounds = options.quick ? 1 : 2;
    const add = (name: string, r: Record<string, number> | null, note?: string): void => {
      if (!r) return;
      const row = { name, samples: r.samples!, seconds: r.seconds!, samplesPerSec: r.samples! / r.seconds!, peakRssMB: r.peakRssMB!, note };
      const prev = rows.find((x) => x.name === name);
      if (!prev) rows.push(row);
      else if (row.samplesPerSec > prev.samplesPerSec) Object.assign(prev, row);
    };
    for (let round = 0; round < rounds; round++) {
      console.log(`Deep Lake: decode at 224 px, round ${round + 1}/${rounds}...`);
      add('folder DataModule (224 px, 2 workers)', runChild(['folder', root, '2']));
      add('Deep Lake local (224 px, 2 workers)', runChild(['deeplake-local', root, '2']));
      add('Deep Lake loopback S3 (224 px, 2 workers)', runChild(['deeplake-s3', root, '2']), 'S3 server in the same process');
    }
    const n = options.quick ? 200_000 : 1_000_000;
    console.log(`Deep Lake: ${n} text-only samples...`);
    await makeTextDataset(path.join(root, 'text'), n);
    const t = runChild(['text1m', path.join(root, 'text'), '1']);
    if (t) {
      rows.push({ name: `${n / 1e6}M text samples streamed (shuffled chunks)`, samples: t.samples!, seconds: t.seconds!, samplesPerSec: t.samples! / t.seconds!, peakRssMB: t.peakRssMB! });
      rows.push({ name: `--filter_NSFW scan of ${n / 1e6}M samples`, samples: n, seconds: t.scanSeconds!, samplesPerSec: n / t.scanSeconds!, peakRssMB: t.peakRssMB!, note: `${t.kept} kept` });
    }
    return { rows };
  } catch (err) {
    return { rows, error: (err as Error).message };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export function renderDeeplakeMarkdown(r: DeeplakeBenchResult | null): string {
  if (!r) return '';
  const lines = ['', '## Deep Lake reading', '', '| measurement | samples | s | samples/s | peak RSS MB | note |', '|---|---:|---:|---:|---:|---|'];
  for (const x of r.rows) lines.push(`| ${x.name} | ${x.samples} | ${x.seconds.toFixed(2)} | ${x.samplesPerSec.toFixed(1)} | ${x.peakRssMB.toFixed(0)} | ${x.note ?? ''} |`);
  if (r.error) lines.push('', `Deep Lake bench error: ${r.error}`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[2] === '--deeplake-child') {
  await child(process.argv[3]!, process.argv[4]!, Number(process.argv[5] ?? 1));
}
