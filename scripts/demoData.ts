/**
 * The demo's embedded dataset: coloured shapes at different positions and sizes,
 * rendered with sharp from SVG, each with a caption file of varied phrasings. Generated
 * at first run (deterministically from a seed), so the repository ships no images.
 *
 * - `train/`: stem-matched `NNNN.png` + `NNNN.txt` pairs (the folder DataModule's format);
 * - `zeroshot/<colour>_<shape>/`: held-out images in an ImageNet-style class layout.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Generator } from '../core/random.js';

export const COLOURS: Record<string, string> = {
  red: '#e6194b',
  green: '#3cb44b',
  blue: '#4363d8',
  yellow: '#ffe119',
  purple: '#911eb4',
  orange: '#f58231',
};
export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
const POSITIONS = { left: [0.28, 0.5], right: [0.72, 0.5], top: [0.5, 0.28], bottom: [0.5, 0.72], centre: [0.5, 0.5] } as const;
const BACKGROUNDS = ['#ffffff', '#f0f0f0', '#e0e0e8', '#202020', '#404048'];

type Shape = (typeof SHAPES)[number];
type Position = keyof typeof POSITIONS;

function shapeSvg(shape: Shape, cx: number, cy: number, r: number, fill: string): string {
  switch (shape) {
    case 'circle':
      return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${cx},${cy - r} ${cx - r},${cy + r} ${cx + r},${cy + r}" fill="${fill}"/>`;
    case 'cross': {
      const t = r / 2.5;
      return `<rect x="${cx - r}" y="${cy - t}" width="${2 * r}" height="${2 * t}" fill="${fill}"/><rect x="${cx - t}" y="${cy - r}" width="${2 * t}" height="${2 * r}" fill="${fill}"/>`;
    }
  }
}

/** Renders one image as PNG bytes. */
export async function renderShape(size: number, shape: Shape, colour: string, position: Position, scale: number, background: string): Promise<Buffer> {
  const [fx, fy] = POSITIONS[position];
  const r = size * scale;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${background}"/>${shapeSvg(shape, fx * size, fy * size, r, COLOURS[colour]!)}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function captions(colour: string, shape: Shape, position: Position, big: boolean): string[] {
  const where = position === 'centre' ? 'in the centre' : `on the ${position}`;
  const size = big ? 'large' : 'small';
  return [
    `a ${colour} ${shape} ${where}`,
    `a photo of a ${colour} ${shape}.`,
    `a ${size} ${colour} ${shape}`,
    `${colour} ${shape}`,
    `there is a ${shape} ${where}, and it is ${colour}`,
    `a drawing of a ${shape} coloured ${colour}.`,
  ];
}

/** Creates the dataset under `root` unless it is already complete. Returns its folders. */
export async function ensureDemoData(root: string, options: { trainImages?: number; zeroshotPerClass?: number; size?: number; seed?: number } = {}): Promise<{ train: string; zeroshot: string }> {
  const trainDir = path.join(root, 'train');
  const zsDir = path.join(root, 'zeroshot');
  const done = path.join(root, '.complete');
  if (await fs.stat(done).then(() => true, () => false)) return { train: trainDir, zeroshot: zsDir };
  const n = options.trainImages ?? 1200;
  const perClass = options.zeroshotPerClass ?? 6;
  const size = options.size ?? 32;
  const g = new Generator(options.seed ?? 1234);
  const colours = Object.keys(COLOURS);
  const positions = Object.keys(POSITIONS) as Position[];
  const pick = <T>(xs: readonly T[]): T => xs[g.randint(xs.length)]!;
  await fs.rm(root, { recursive: true, force: true });
  // Captions in one subfolder, images in another: the pairing is by stem, as in train-CLIP.
  await fs.mkdir(path.join(trainDir, 'images'), { recursive: true });
  await fs.mkdir(path.join(trainDir, 'captions'), { recursive: true });
  const jobs: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    const [colour, shape, position] = [pick(colours), pick(SHAPES), pick(positions)];
    const scale = g.uniform(0.14, 0.24);
    const stem = String(i).padStart(5, '0');
    const bg = pick(BACKGROUNDS);
    jobs.push(
      renderShape(size, shape, colour, position, scale, bg).then(async (png) => {
        await fs.writeFile(path.join(trainDir, 'images', `${stem}.png`), png);
        await fs.writeFile(path.join(trainDir, 'captions', `${stem}.txt`), captions(colour, shape, position, scale > 0.19).join('\n') + '\n');
      }),
    );
  }
  for (const colour of colours) {
    for (const shape of SHAPES) {
      const dir = path.join(zsDir, `${colour}_${shape}`);
      await fs.mkdir(dir, { recursive: true });
      for (let k = 0; k < perClass; k++) {
        const png = renderShape(size, shape, colour, pick(positions), g.uniform(0.14, 0.24), pick(BACKGROUNDS));
        jobs.push(png.then((b) => fs.writeFile(path.join(dir, `${k}.png`), b)));
      }
    }
  }
  await Promise.all(jobs);
  await fs.writeFile(done, `${n} training pairs, ${colours.length * SHAPES.length} zero-shot classes × ${perClass}\n`);
  return { train: trainDir, zeroshot: zsDir };
}
