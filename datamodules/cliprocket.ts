import { existsSync } from 'node:fs';
import { access, constants, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { MisconfigurationError } from '../core/errors.js';
import { PickleDict, type PickleValue } from '../core/pickle/types.js';
import { register } from '../core/registry.js';
import { ZipArchive } from '../core/zip.js';
import type { ItemResult } from './stream/batcher.js';
import type { IndexedSource } from './stream/indexedLoader.js';
import { IndexedDataModule, type IndexedDataOptions } from './stream/indexedDataModule.js';
import { yfccCandidates } from './cliprocket/captions.js';
import { readNpyObjectArray } from './cliprocket/npy.js';
import { YfccIndex } from './cliprocket/yfccIndex.js';
import { camelKeys } from './webdataset.js';

export type ClipRocketDataset = 'cc3m' | 'cc12m' | 'yfcc15m' | 'merged_opendata';

/** Options of {@link ClipRocketDataModule} (clip-rocket's `--dataset`, `--root`, `--metadata`). */
export interface ClipRocketOptions extends IndexedDataOptions {
  dataset: ClipRocketDataset;
  /** Image root (merged_opendata: the cc3m, cc12m and yfcc15m roots joined with `---`). */
  root: string;
  /** cc3m.npy / cc12m.npy / yfcc15m.pkl (merged_opendata: the three joined with `---`). */
  metadata: string;
  /** Where the YFCC index goes when the metadata's folder is read-only. Default ~/.cache/lightclip. */
  cacheDir?: string;
}

function dictGet(d: PickleValue, key: string): PickleValue | undefined {
  return d instanceof PickleDict ? d.entries.get(key) : undefined;
}

/** CC3M/CC12M: `.npy` object array of dicts → image path under root + captions (kept compactly). */
async function ccSource(kind: 'cc3m' | 'cc12m', root: string, metadata: string): Promise<IndexedSource> {
  const items = await readNpyObjectArray(metadata);
  const files: string[] = new Array(items.length);
  const captions: string[][] = new Array(items.length);
  const nameKey = kind === 'cc3m' ? 'image_id' : 'image_name';
  items.forEach((d, i) => {
    const name = dictGet(d, nameKey);
    const caps = dictGet(d, 'captions');
    if ((typeof name !== 'string' && typeof name !== 'number') || !Array.isArray(caps) || !caps.every((c) => typeof c === 'string')) {
      throw new MisconfigurationError(`\`--metadata\` ${metadata}: item ${i} is not a dict with ${JSON.stringify(nameKey)} (str or int) and "captions" (list of str), as clip-rocket's ${kind} expects.`);
    }
    files[i] = String(name);
    captions[i] = caps as string[];
  });
  items.length = 0;
  return {
    size: files.length,
    load: (i): ItemResult => {
      const c = captions[i]!.filter((x) => x.length > 0);
      if (c.length === 0) return { ok: false, kind: 'incomplete', what: `${metadata} item ${i}`, why: 'no caption' };
      const file = path.join(root, files[i]!);
      return { ok: true, item: { key: files[i]!, url: file, image: file, captions: c } };
    },
  };
}

/** Keeps up to `max` zip archives open (YFCC has 100 × 1000 of them). */
class ZipCache {
  private readonly open = new Map<string, Promise<ZipArchive>>();
  constructor(private readonly max = 32) {}
  get(file: string): Promise<ZipArchive> {
    let z = this.open.get(file);
    if (z) {
      this.open.delete(file);
      this.open.set(file, z);
      return z;
    }
    z = ZipArchive.open(file);
    z.catch(() => this.open.delete(file));
    this.open.set(file, z);
    if (this.open.size > this.max) {
      const [oldest, p] = this.open.entries().next().value as [string, Promise<ZipArchive>];
      this.open.delete(oldest);
      void p.then((a) => a.close()).catch(() => undefined);
    }
    return z;
  }
  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((a) => a.close()).catch(() => undefined)));
  }
}

/** The `images/d[0:2]/d[2:5].zip` archive and `d[5:8].jpg` member of a YFCC line index. */
export function yfccImagePath(root: string, index: number): { zip: string; member: string } {
  if (!Number.isInteger(index) || index < 0 || index >= 1e8) throw new Error(`YFCC index ${index} is not an integer in [0, 10^8)`);
  const d = String(index).padStart(8, '0');
  return { zip: path.join(root, 'images', d.slice(0, 2), `${d.slice(2, 5)}.zip`), member: `${d.slice(5, 8)}.jpg` };
}

async function indexPath(metadata: string, cacheDir?: string): Promise<string> {
  const beside = `${metadata}.lcidx`;
  try {
    await access(path.dirname(path.resolve(metadata)), constants.W_OK);
    if (!cacheDir) return beside;
  } catch {
    // read-only dataset folder: use the cache
  }
  if (existsSync(beside)) return beside;
  const dir = cacheDir ?? path.join(os.homedir(), '.cache', 'lightclip');
  await mkdir(dir, { recursive: true });
  return path.join(dir, `yfcc-${createHash('sha256').update(path.resolve(metadata)).digest('hex').slice(0, 16)}.lcidx`);
}

/**
 * clip-rocket's datasets (datasets.py, SLIP's make_dataset.py): `--dataset cc3m|cc12m` with a
 * `.npy` object array of `{image_id|image_name, captions}` dicts (restricted unpickling),
 * `--dataset yfcc15m` with yfcc15m.pkl indexed once into a compact file and images read from
 * the 100×1000 zips, and `merged_opendata` concatenating the three in that order. Caption
 * sampling is 'single' (one candidate drawn per sample and epoch).
 */
export class ClipRocketDataModule extends IndexedDataModule {
  private zips = new ZipCache();
  private indexes: YfccIndex[] = [];

  constructor(private readonly cr: ClipRocketOptions) {
    // SLIP/clip-rocket train with RandomResizedCrop(scale=(0.5, 1.0)).
    super(cr, 0.5);
    if (!['cc3m', 'cc12m', 'yfcc15m', 'merged_opendata'].includes(cr.dataset)) throw new MisconfigurationError(`\`--dataset\` must be cc3m, cc12m, yfcc15m or merged_opendata, got ${JSON.stringify(cr.dataset)}.`);
    if (!cr.root) throw new MisconfigurationError(`\`--root\` is required with \`--dataset ${cr.dataset}\`: the image folder.`);
    if (!cr.metadata) throw new MisconfigurationError(`\`--metadata\` is required with \`--dataset ${cr.dataset}\`: ${cr.dataset === 'yfcc15m' ? 'yfcc15m.pkl' : `${cr.dataset}.npy`}.`);
    this.hparams = { dataset: cr.dataset, root: cr.root, metadata: cr.metadata };
  }

  override prepareData(): Promise<void> {
    return this.openAll().then(() => undefined);
  }

  protected override async openSources(): Promise<void> {
    this.train = await this.openAll();
  }

  private async openAll(): Promise<IndexedSource> {
    const cr = this.cr;
    if (cr.dataset !== 'merged_opendata') return this.openOne(cr.dataset, cr.root, cr.metadata);
    const roots = cr.root.split('---');
    const metas = cr.metadata.split('---');
    if (roots.length !== 3 || metas.length !== 3) {
      throw new MisconfigurationError('`--dataset merged_opendata` needs three `---`-joined `--root`s and `--metadata` files: cc3m, cc12m, yfcc15m.');
    }
    const parts = [await this.openOne('cc3m', roots[0]!, metas[0]!), await this.openOne('cc12m', roots[1]!, metas[1]!), await this.openOne('yfcc15m', roots[2]!, metas[2]!)];
    const starts = [0, parts[0]!.size, parts[0]!.size + parts[1]!.size];
    return {
      size: starts[2]! + parts[2]!.size,
      load: (i) => {
        const k = i >= starts[2]! ? 2 : i >= starts[1]! ? 1 : 0;
        return parts[k]!.load(i - starts[k]!);
      },
    };
  }

  private async openOne(kind: 'cc3m' | 'cc12m' | 'yfcc15m', root: string, metadata: string): Promise<IndexedSource> {
    if (!existsSync(metadata)) throw new MisconfigurationError(`\`--metadata\`: ${JSON.stringify(metadata)} does not exist.`);
    if (kind !== 'yfcc15m') {
      const s = await ccSource(kind, root, metadata);
      this.log?.(`--dataset ${kind}: ${s.size} samples from ${metadata}`);
      return s;
    }
    const index = YfccIndex.open(metadata, await indexPath(metadata, this.cr.cacheDir), this.log);
    this.indexes.push(index);
    this.log?.(`--dataset yfcc15m: ${index.count} samples from ${metadata}`);
    const zips = this.zips;
    return {
      size: index.count,
      load: async (i): Promise<ItemResult> => {
        const e = index.entry(i);
        const { zip, member } = yfccImagePath(root, e.index);
        const what = `${zip}:${member}`;
        try {
          const archive = await zips.get(zip);
          const image = await archive.read(member, { verifyCrc: true });
          return { ok: true, item: { key: String(e.index), url: zip, image, captions: yfccCandidates(e.title, e.desc) } };
        } catch (err) {
          return { ok: false, kind: 'corrupt', what, why: err instanceof Error ? err.message : String(err) };
        }
      },
    };
  }

  override async teardown(stage: Parameters<IndexedDataModule['teardown']>[0]): Promise<void> {
    await super.teardown(stage);
    await this.zips.close();
    this.zips = new ZipCache();
  }
}

register<ClipRocketDataModule>('datamodule', 'cliprocket', (options) => new ClipRocketDataModule(camelKeys(options ?? {}) as unknown as ClipRocketOptions), {
  description: 'clip-rocket datasets: --dataset cc3m|cc12m|yfcc15m|merged_opendata with --root and --metadata',
});
