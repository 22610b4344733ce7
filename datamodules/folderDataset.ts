import type { Dirent } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { MisconfigurationError } from '../core/errors.js';

/** Image file extensions paired with captions (lower case; matching ignores case). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.bmp', '.webp', '.gif', '.tif', '.tiff'];
/** Caption file extension (matching ignores case). */
export const CAPTION_EXTENSION = '.txt';

/** One usable sample: an image and the non-blank lines of its caption file. */
export interface ImageTextPair {
  stem: string;
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of the caption file. */
  captionFile: string;
  /** One caption per non-blank line, trimmed. */
  captions: string[];
}

/** A stem claimed by more than one image or more than one caption file; it is skipped. */
export interface DuplicateStem {
  stem: string;
  images: string[];
  captions: string[];
}

/** What a folder scan found besides the pairs. Paths are relative to `folder`, sorted. */
export interface FolderScanReport {
  folder: string;
  imageFiles: number;
  captionFiles: number;
  pairs: number;
  unpairedImages: string[];
  unpairedCaptions: string[];
  duplicateStems: DuplicateStem[];
  /** Caption files with no non-blank line (their images are dropped). */
  emptyCaptions: string[];
}

/** Result of {@link scanImageTextFolder}. */
export interface FolderScan {
  pairs: ImageTextPair[];
  report: FolderScanReport;
}

/** Options of {@link scanImageTextFolder}. */
export interface ScanOptions {
  /** The flag named in errors (`--folder`, `--val_folder`). */
  flag?: string;
  /** Where the summary line goes; `console.log` by default, null for silence. */
  log?: ((line: string) => void) | null;
}

/** Code-point order: the same on every machine, unlike locale collation. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Python's `Path.stem`: the name without its last suffix (a leading dot is not a suffix). */
function stemOf(file: string): string {
  const base = path.basename(file);
  return base.slice(0, base.length - path.extname(base).length);
}

/**
 * All files under `root`, sorted. Symlinked files and folders are followed (datasets are
 * often assembled from links), with a set of visited real paths so a link cycle ends.
 */
async function walk(root: string): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const real = await realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    const entries: Dirent[] = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => byCodePoint(a.name, b.name));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        const s = await stat(full).catch(() => null); // a dangling link is neither
        isDir = s?.isDirectory() ?? false;
        isFile = s?.isFile() ?? false;
      }
      if (isDir) await visit(full);
      else if (isFile) files.push(full);
    }
  };
  await visit(root);
  return files;
}

/** Maps `fn` over `items` with at most `limit` calls in flight, keeping order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

/** Splits a caption file into its non-blank lines (BOM and `\r` removed, lines trimmed). */
export function parseCaptions(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** The one-line summary printed after a scan. */
export function formatScanSummary(report: FolderScanReport, flag = '--folder'): string {
  return (
    `${flag} ${report.folder}: ${report.pairs} image/caption pairs ` +
    `(${report.imageFiles} images, ${report.captionFiles} caption files); ` +
    `${report.unpairedImages.length} unpaired images, ${report.unpairedCaptions.length} unpaired captions, ` +
    `${report.duplicateStems.length} duplicate stems skipped, ${report.emptyCaptions.length} empty caption files skipped`
  );
}

/**
 * Scans `folder` recursively and pairs every image with the caption file of the same stem
 * anywhere below it (`a/b/img1.jpg` ↔ `x/img1.txt`), as train-CLIP's TextImageDataset does,
 * but reports what train-CLIP drops silently: unpaired images and captions, stems claimed
 * twice (skipped rather than guessing which file was meant) and caption files with no text.
 * Pairs are sorted by image path so the order, and thus every seeded shuffle, is the same
 * on every machine. Caption files are read now, so the dataset's length is exact.
 *
 * @throws MisconfigurationError naming the flag when the folder is missing or has no pairs.
 */
export async function scanImageTextFolder(folder: string, options: ScanOptions = {}): Promise<FolderScan> {
  const flag = options.flag ?? '--folder';
  const root = path.resolve(folder);
  const info = await stat(root).catch(() => null);
  if (!info) throw new MisconfigurationError(`\`${flag}\` ${JSON.stringify(folder)} does not exist: expected a folder of images and .txt captions.`);
  if (!info.isDirectory()) throw new MisconfigurationError(`\`${flag}\` ${JSON.stringify(folder)} is not a folder: expected a folder of images and .txt captions.`);

  const images = new Map<string, string[]>();
  const captions = new Map<string, string[]>();
  let imageFiles = 0;
  let captionFiles = 0;
  for (const file of await walk(root)) {
    const ext = path.extname(file).toLowerCase();
    const target = IMAGE_EXTENSIONS.includes(ext) ? images : ext === CAPTION_EXTENSION ? captions : null;
    if (!target) continue;
    if (target === images) imageFiles++;
    else captionFiles++;
    const stem = stemOf(file);
    const list = target.get(stem);
    if (list) list.push(file);
    else target.set(stem, [file]);
  }

  const rel = (p: string): string => path.relative(root, p);
  const unpairedImages: string[] = [];
  const unpairedCaptions: string[] = [];
  const duplicateStems: DuplicateStem[] = [];
  const candidates: { stem: string; image: string; captionFile: string }[] = [];
  const stems = [...new Set([...images.keys(), ...captions.keys()])].sort(byCodePoint);
  for (const stem of stems) {
    const imgs = images.get(stem) ?? [];
    const caps = captions.get(stem) ?? [];
    if (imgs.length > 1 || caps.length > 1) {
      duplicateStems.push({ stem, images: imgs.map(rel), captions: caps.map(rel) });
    } else if (imgs.length === 1 && caps.length === 1) {
      candidates.push({ stem, image: imgs[0]!, captionFile: caps[0]! });
    } else if (imgs.length === 1) {
      unpairedImages.push(rel(imgs[0]!));
    } else {
      unpairedCaptions.push(rel(caps[0]!));
    }
  }

  const texts = await mapLimited(candidates, 32, (c) => readFile(c.captionFile, 'utf8'));
  const pairs: ImageTextPair[] = [];
  const emptyCaptions: string[] = [];
  candidates.forEach((c, i) => {
    const lines = parseCaptions(texts[i]!);
    if (lines.length === 0) emptyCaptions.push(rel(c.captionFile));
    else pairs.push({ ...c, captions: lines });
  });
  pairs.sort((a, b) => byCodePoint(a.image, b.image));
  unpairedImages.sort(byCodePoint);
  unpairedCaptions.sort(byCodePoint);
  emptyCaptions.sort(byCodePoint);

  const report: FolderScanReport = {
    folder: root,
    imageFiles,
    captionFiles,
    pairs: pairs.length,
    unpairedImages,
    unpairedCaptions,
    duplicateStems,
    emptyCaptions,
  };
  const log = options.log === undefined ? console.log : options.log;
  log?.(formatScanSummary(report, flag));
  if (pairs.length === 0) {
    throw new MisconfigurationError(
      `\`${flag}\` ${JSON.stringify(folder)} has no usable image/caption pairs: expected images ` +
        `(${IMAGE_EXTENSIONS.join(' ')}) each with a .txt caption file of the same stem somewhere below it. ` +
        formatScanSummary(report, flag),
    );
  }
  return { pairs, report };
}

