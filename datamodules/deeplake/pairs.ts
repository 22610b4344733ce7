/**
 * Random access to a Deep Lake dataset's image/caption pairs (eval.ts `embed --path`): the
 * encoded image bytes (links fetched, raw pixels as PNG) and the caption of sample `i`, or
 * why the sample cannot be used.
 */
import sharp from 'sharp';
import { openStorage, type OpenStorageOptions } from '../storage/index.js';
import { DeepLakeDataset } from './dataset.js';
import { DeepLakeDataModule } from './datamodule.js';

export interface DeepLakePairs {
  dataset: DeepLakeDataset;
  length: number;
  read(i: number): Promise<{ image: Uint8Array; caption: string } | { error: string }>;
}

export async function openDeepLakePairs(where: string, o: OpenStorageOptions & { imageKey?: string; textKey?: string; branch?: string; commit?: string } = {}): Promise<DeepLakePairs> {
  const ds = await DeepLakeDataset.open(await openStorage(where, o), { branch: o.branch, commit: o.commit });
  const { image, text } = DeepLakeDataModule.resolveKeys(ds, o.imageKey, o.textKey);
  const dec = new TextDecoder();
  return {
    dataset: ds,
    length: ds.length,
    async read(i) {
      try {
        const caption = dec.decode((await text.raw(i)).bytes);
        const raw = await image.raw(i);
        if (image.meta.is_link) {
          const url = dec.decode(raw.bytes);
          return url ? { image: await ds.fetchLink(url), caption } : { error: 'empty link' };
        }
        if (raw.bytes.length === 0) return { error: 'empty image' };
        if (raw.imageCompression) return { image: raw.bytes, caption };
        const [h, w, c = 1] = raw.shape as [number, number, number?];
        return { image: new Uint8Array(await sharp(raw.bytes, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } }).png({ compressionLevel: 0 }).toBuffer()), caption };
      } catch (err) {
        return { error: (err as Error).message };
      }
    },
  };
}
