import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { CaptionTokenizer } from '../../datamodules/types.js';

/** A fresh temp folder; remove with `rm(dir, { recursive: true })`. */
export async function tempDir(prefix = 'lightclip-dm-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Writes `content` to `root/rel`, creating folders. Returns the absolute path. */
export async function put(root: string, rel: string, content: string | Uint8Array = ''): Promise<string> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

/** A solid-colour image encoded as PNG (lossless) or JPEG. */
export async function solid(width: number, height: number, rgb: [number, number, number], format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

/** An image from raw RGB bytes, encoded as PNG. */
export async function fromRaw(width: number, height: number, pixels: Uint8Array): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Raw RGB bytes where `fn(x, y)` gives each pixel. */
export function paint(width: number, height: number, fn: (x: number, y: number) => [number, number, number]): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set(fn(x, y), (y * width + x) * 3);
  }
  return out;
}

/** Pseudo-random pixels from a tiny LCG (tests only; no library randomness). */
export function noise(width: number, height: number, seed = 1): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export const MEAN = [0.48145466, 0.4578275, 0.40821073];
export const STD = [0.26862954, 0.26130258, 0.27577711];

/** CLIP normalisation of one 8-bit value, by hand. */
export function norm(v: number, c: number): number {
  return (v / 255 - MEAN[c]!) / STD[c]!;
}

/**
 * A stand-in tokenizer: row = [length, code of each character…] padded with 0, so a test can
 * read the caption back from the ids.
 */
export function fakeTokenizer(contextLength = 16): CaptionTokenizer & { decode(row: ArrayLike<number>): string } {
  return {
    contextLength,
    tokenize(texts: string[], ctx = contextLength) {
      const ids = new Int32Array(texts.length * ctx);
      texts.forEach((t, i) => {
        ids[i * ctx] = t.length;
        for (let j = 0; j < Math.min(t.length, ctx - 1); j++) ids[i * ctx + 1 + j] = t.charCodeAt(j);
      });
      return { ids, shape: [texts.length, ctx] };
    },
    decode(row: ArrayLike<number>) {
      const n = Math.min(row[0]!, row.length - 1);
      let s = '';
      for (let j = 0; j < n; j++) s += String.fromCharCode(row[1 + j]!);
      return s;
    },
  };
}
