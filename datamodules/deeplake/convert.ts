/**
 * `lightclip deeplake convert`: a stem-matched image/caption folder (train-CLIP's layout,
 * scanned by the folder datamodule's own scanner) → a Deep Lake v3 dataset in deeplake
 * 3.9.15's layout. One sample per caption line (an image with three caption lines becomes
 * three samples, as LAION rows are), JPEG files stored byte for byte (with `png`
 * compression, PNG files are); other images are re-encoded. Unreadable images are skipped
 * and counted in the summary.
 */
import { promises as fs } from 'node:fs';
import sharp from 'sharp';
import { scanImageTextFolder } from '../folderDataset.js';
import { DeepLakeWriter } from './writer.js';

export interface ConvertOptions {
  folder: string;
  out: string;
  /** Sample compression of the image tensor. Default jpeg. */
  imageCompression?: 'jpeg' | 'png';
  /** `new`: URL/TEXT (the fork's 2023+ layout), `old`: image/caption (2022). Default new. */
  layout?: 'new' | 'old';
  /** Chunk size, bytes (default deeplake's 16 MB). */
  maxChunkSize?: number;
  log?: ((line: string) => void) | null;
}

export interface ConvertReport {
  images: number;
  samples: number;
  skipped: { file: string; error: string }[];
}

export async function convertFolder(o: ConvertOptions): Promise<ConvertReport> {
  const log = o.log === undefined ? console.log : o.log;
  const scan = await scanImageTextFolder(o.folder, { flag: '--folder', log });
  const [imageKey, textKey] = o.layout === 'old' ? ['image', 'caption'] : ['URL', 'TEXT'];
  const w = await DeepLakeWriter.create(o.out, [
    { name: imageKey, htype: 'image', sampleCompression: o.imageCompression ?? 'jpeg', maxChunkSize: o.maxChunkSize },
    { name: textKey, htype: 'text', maxChunkSize: o.maxChunkSize },
  ]);
  const report: ConvertReport = { images: 0, samples: 0, skipped: [] };
  for (const pair of scan.pairs) {
    const bytes = new Uint8Array(await fs.readFile(pair.image));
    try {
      await sharp(bytes).metadata();
      // decoding the whole image catches truncated files that metadata alone accepts
      await sharp(bytes).raw().toBuffer();
    } catch (err) {
      report.skipped.push({ file: pair.image, error: (err as Error).message });
      log?.(`skipping unreadable image ${pair.image}: ${(err as Error).message}`);
      continue;
    }
    for (const caption of pair.captions) {
      await w.append({ [imageKey]: bytes, [textKey]: caption });
      report.samples++;
    }
    report.images++;
  }
  await w.commit(`lightclip deeplake convert --folder ${o.folder}`);
  await w.close();
  log?.(`wrote ${report.samples} samples (${report.images} images${report.skipped.length ? `, ${report.skipped.length} unreadable skipped` : ''}) to ${o.out} as ${imageKey}/${textKey}`);
  return report;
}
