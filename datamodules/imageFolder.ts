import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { tf, type Tensor } from '../core/tf.js';
import type { DataLoader } from '../core/datamodule.js';
import { MisconfigurationError } from '../core/errors.js';
import { clipEvalTransform } from './transforms.js';

/** Image extensions recognised in class folders (case-insensitive). */
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.webp', '.gif', '.tif', '.tiff']);

/** One labelled image. */
export interface LabelledImage {
  path: string;
  label: number;
}

/** A batch of the image-folder loader: NHWC images, int32 labels, file paths. */
export interface LabelledImageBatch {
  images: Tensor;
  labels: Tensor;
  paths: string[];
}

/**
 * torchvision's `ImageFolder` layout: one subfolder per class (sorted by name, so the
 * label of a folder is its index), images anywhere below it. `classNames` maps the
 * folders to readable names: a JSON list aligned with the sorted folders (ImageNet's
 * `n01440764`... → "tench"), an object `{folder: name}`, or the folder names themselves.
 */
export async function scanImageFolder(
  root: string,
  options: { flag?: string; classNames?: string[] | Record<string, string> } = {},
): Promise<{ samples: LabelledImage[]; folders: string[]; classNames: string[] }> {
  const flag = options.flag ?? '--data';
  const st = await fs.stat(root).catch(() => null);
  if (!st?.isDirectory()) throw new MisconfigurationError(`\`${flag}\` must be a folder with one subfolder per class, got ${JSON.stringify(root)} (not a directory).`);
  const folders = (await fs.readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  if (folders.length === 0) throw new MisconfigurationError(`\`${flag}\`=${JSON.stringify(root)} has no class subfolders.`);
  const samples: LabelledImage[] = [];
  for (const [label, folder] of folders.entries()) {
    for (const file of await walk(path.join(root, folder))) {
      if (IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase())) samples.push({ path: file, label });
    }
  }
  if (samples.length === 0) throw new MisconfigurationError(`\`${flag}\`=${JSON.stringify(root)}: no images found in its ${folders.length} class folders.`);
  let names: string[];
  const given = options.classNames;
  if (Array.isArray(given)) {
    if (given.length !== folders.length) {
      throw new MisconfigurationError(`\`--class_names\` lists ${given.length} names but \`${flag}\` has ${folders.length} class folders.`);
    }
    names = given;
  } else if (given) {
    const missing = folders.filter((f) => !(f in given));
    if (missing.length) throw new MisconfigurationError(`\`--class_names\` has no name for folder(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '...' : ''}.`);
    names = folders.map((f) => given[f]!);
  } else {
    names = folders.map((f) => f.replace(/_/g, ' '));
  }
  return { samples, folders, classNames: names };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Batches labelled images with CLIP's evaluation transform (resize the shorter side
 * bicubically, centre crop, normalise; images already at the size pass through). sharp
 * decodes on libuv's thread pool, so the images of a batch decode in parallel. Images
 * that fail to decode are skipped and counted in `skipped`.
 */
export class LabelledImageLoader implements DataLoader<LabelledImageBatch> {
  skipped = 0;
  constructor(
    private readonly samples: readonly LabelledImage[],
    private readonly imageSize: number,
    private readonly batchSize: number,
  ) {}

  get length(): number {
    return Math.ceil(this.samples.length / this.batchSize);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LabelledImageBatch> {
    const transform = clipEvalTransform(this.imageSize);
    const s = this.imageSize;
    for (let i = 0; i < this.samples.length; i += this.batchSize) {
      const part = this.samples.slice(i, i + this.batchSize);
      const decoded = await Promise.all(part.map((x) => transform.apply(x.path).then((px) => ({ x, px }), () => null)));
      const ok = decoded.filter((d): d is { x: LabelledImage; px: Float32Array } => d !== null);
      this.skipped += part.length - ok.length;
      if (ok.length === 0) continue;
      const pixels = new Float32Array(ok.length * s * s * 3);
      ok.forEach((d, j) => pixels.set(d.px, j * s * s * 3));
      yield {
        images: tf.tensor4d(pixels, [ok.length, s, s, 3]),
        labels: tf.tensor1d(ok.map((d) => d.x.label), 'int32'),
        paths: ok.map((d) => d.x.path),
      };
    }
  }
}
