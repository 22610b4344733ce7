import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { MisconfigurationError } from '../core/errors.js';
import { plainPickleHooks } from '../core/pickle/numpy.js';
import { PickleDict, type PickleValue } from '../core/pickle/types.js';
import { unpickle } from '../core/pickle/unpickler.js';
import { register } from '../core/registry.js';
import { unquotePlus } from './cliprocket/captions.js';
import { ensureExtracted } from './corenet/extract.js';
import type { ItemResult } from './stream/batcher.js';
import type { IndexedSource } from './stream/indexedLoader.js';
import { IndexedDataModule, type IndexedDataOptions } from './stream/indexedDataModule.js';
import { mixSeed } from './stream/shuffle.js';
import { camelKeys } from './webdataset.js';

/**
 * CoreNet's caption cleaning (img_text_tar_dataset.py): unquote with `+` as space, HTML tags
 * stripped, lower-cased. ftfy's mojibake repair has no JavaScript equivalent here; Unicode
 * NFC normalisation stands in for the part of it that matters to a tokenizer.
 */
export function cleanCorenetCaption(s: string): string {
  return unquotePlus(s).replace(/<[^<]+?>/g, '').normalize('NFC').trim().toLowerCase();
}

/** Options of {@link CorenetImgTextTarDataModule} (`--dataset_type img_text_tar --metadata DIR/metadata.pkl`). */
export interface CorenetOptions extends IndexedDataOptions {
  metadata: string;
  /** Where archives are extracted once. Default `.corenet_data_cache` (CoreNet's, in the working directory). */
  cacheDir?: string;
}

function dictValue(d: PickleDict, key: string): PickleValue | undefined {
  return d.entries.get(key);
}

const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** One CoreNet sample pickle → image bytes and captions (strict base64, `texts` before `text`). */
export function parseCorenetSample(bytes: Uint8Array, file: string): { image: Uint8Array; captions: string[] } {
  const { value } = unpickle(bytes, plainPickleHooks(file), file);
  if (!(value instanceof PickleDict)) throw new Error(`${file}: expected a dict with "image" and "text"/"texts"`);
  const img = dictValue(value, 'image');
  const b64 = img instanceof Uint8Array ? Buffer.from(img).toString('latin1') : img;
  if (typeof b64 !== 'string') throw new Error(`${file}: "image" must be base64 bytes or str`);
  if (b64.length % 4 !== 0 || !STRICT_BASE64.test(b64)) throw new Error(`${file}: "image" is not strict base64 (CoreNet decodes with validate=True)`);
  const t = dictValue(value, 'texts') ?? dictValue(value, 'text');
  const raw = typeof t === 'string' ? [t] : Array.isArray(t) && t.every((x) => typeof x === 'string') ? (t as string[]) : null;
  if (!raw) throw new Error(`${file}: "texts"/"text" must be a str or a list of str`);
  const captions = raw.map(cleanCorenetCaption).filter((c) => c.length > 0);
  if (captions.length === 0) throw new Error(`${file}: empty caption`);
  return { image: Buffer.from(b64, 'base64'), captions };
}

/**
 * CoreNet's `img_text_tar` dataset: metadata.pkl gives `total_tar_files` × `max_files_per_tar`
 * samples; sample `idx` is `<folder>/<idx>.pkl` (global index) in `<folder>.tar.gz` beside the
 * metadata, folder = idx // max_files_per_tar, extracted once into the cache under a lock. A
 * missing file is replaced by another existing `.pkl` of the same folder (CoreNet's
 * oversampling; chosen by a hash of the index here, so epochs are reproducible).
 */
export class CorenetImgTextTarDataModule extends IndexedDataModule {
  private readonly metadata: string;
  private readonly cacheDir: string;

  constructor(options: CorenetOptions) {
    super(options, 0.9);
    if (!options.metadata) throw new MisconfigurationError('`--metadata` is required with `--dataset_type img_text_tar`: DIR/metadata.pkl.');
    this.metadata = options.metadata;
    this.cacheDir = path.resolve(options.cacheDir ?? '.corenet_data_cache');
    this.hparams = { dataset_type: 'img_text_tar', metadata: options.metadata };
  }

  protected override async openSources(): Promise<void> {
    const file = this.metadata;
    if (!existsSync(file)) throw new MisconfigurationError(`\`--metadata\`: ${JSON.stringify(file)} does not exist.`);
    const { value } = unpickle(await readFile(file), plainPickleHooks(file), file);
    const total = value instanceof PickleDict ? dictValue(value, 'total_tar_files') : undefined;
    const per = value instanceof PickleDict ? dictValue(value, 'max_files_per_tar') : undefined;
    if (typeof total !== 'number' || typeof per !== 'number' || !(total > 0) || !(per > 0) || !(value as PickleDict).entries.has('tar_file_names')) {
      throw new MisconfigurationError(`\`--metadata\` ${file}: expected a dict with total_tar_files, max_files_per_tar (positive ints) and tar_file_names, as CoreNet writes.`);
    }
    const dir = path.dirname(file);
    const cache = this.cacheDir;
    const listings = new Map<string, Promise<string[]>>();
    const listing = (folderDir: string): Promise<string[]> => {
      let l = listings.get(folderDir);
      if (!l) {
        l = readdir(folderDir).then((f) => f.filter((x) => x.endsWith('.pkl')).sort());
        listings.set(folderDir, l);
      }
      return l;
    };
    this.log?.(`--dataset_type img_text_tar: ${total} archives × ${per} = ${total * per} samples (${file}; cache ${cache})`);
    this.train = {
      size: total * per,
      load: async (idx): Promise<ItemResult> => {
        const folder = String(Math.floor(idx / per));
        const archive = path.join(dir, `${folder}.tar.gz`);
        const what = `${archive}:${folder}/${idx}.pkl`;
        try {
          const folderDir = await ensureExtracted(archive, folder, cache);
          let pkl = path.join(folderDir, `${idx}.pkl`);
          if (!existsSync(pkl)) {
            const files = await listing(folderDir);
            if (files.length === 0) throw new Error(`folder ${folder} of ${archive} holds no .pkl sample`);
            pkl = path.join(folderDir, files[mixSeed(idx, 0x5eed) % files.length]!);
          }
          const s = parseCorenetSample(await readFile(pkl), pkl);
          return { ok: true, item: { key: String(idx), url: pkl, image: s.image, captions: s.captions } };
        } catch (err) {
          return { ok: false, kind: 'corrupt', what, why: err instanceof Error ? err.message : String(err) };
        }
      },
    } satisfies IndexedSource;
  }
}

register<CorenetImgTextTarDataModule>('datamodule', 'img_text_tar', (options) => new CorenetImgTextTarDataModule(camelKeys(options ?? {}) as unknown as CorenetOptions), {
  description: "CoreNet's img_text_tar: --metadata DIR/metadata.pkl with <folder>.tar.gz archives of <idx>.pkl samples",
});
