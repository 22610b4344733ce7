/**
 * A small synchronous PNG encoder (8-bit gray, gray+alpha, RGB, RGBA) for image summaries.
 * sharp can encode PNG too, but only asynchronously, and loggers are called synchronously
 * from the training loop. Spec: https://www.w3.org/TR/png/ (chunks §5, IHDR §11.2.2).
 */
import { deflateSync } from 'node:zlib';
import { makeCrc32Table } from './crc32c.js';

/** The 8-byte PNG file signature. */
export const PNG_SIGNATURE: Uint8Array = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** Reflected IEEE 802.3 polynomial 0x04C11DB7, bit-reversed; PNG chunk CRCs use it (§5.5). */
const CRC32_TABLE = makeCrc32Table(0xedb88320);

/** CRC-32 (IEEE, as zlib/PNG): `crc32(utf8("123456789")) === 0xcbf43926`. */
export function crc32(bytes: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = CRC32_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** Interleaved 8-bit pixels, row-major, `channels` per pixel. */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
  readonly channels: 1 | 2 | 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** PNG colour types by channel count (§11.2.2 Table 11.1). */
const COLOR_TYPE: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };

/** One chunk: `uint32 BE length | type | data | uint32 BE crc32(type | data)`. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes `image` as a PNG file.
 * @throws RangeError when the sizes and the data length disagree
 */
export function encodePng(image: RawImage): Uint8Array {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG width and height must be positive integers, got ${width}x${height}`);
  }
  if (COLOR_TYPE[channels] === undefined) throw new RangeError(`PNG channels must be 1, 2, 3 or 4, got ${channels}`);
  const stride = width * channels;
  if (data.length !== stride * height) {
    throw new RangeError(`pixel data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${stride * height}`);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOR_TYPE[channels]!;
  // compression 0 (deflate), filter method 0, interlace 0: already zero.

  // Each scanline is prefixed by its filter type; "Up" (2) compresses smooth images well at
  // the cost of one subtraction per byte, and the first row's "Up" predictor is zero.
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = y * stride;
    raw[o] = 2;
    if (y === 0) raw.set(data.subarray(0, stride), o + 1);
    else for (let x = 0; x < stride; x++) raw[o + 1 + x] = (data[row + x]! - data[row - stride + x]!) & 0xff;
  }
  const idat = deflateSync(raw);
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Width, height and channel count from a PNG's IHDR chunk. */
export interface PngInfo {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** Whether `bytes` starts with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * Reads size and channels from a PNG file's IHDR (the first chunk, §5.6), without decoding.
 * Palette images (colour type 3) report 3 channels.
 * @throws RangeError when `bytes` is not a PNG
 */
export function readPngInfo(bytes: Uint8Array): PngInfo {
  if (!isPng(bytes) || bytes.length < 33) throw new RangeError('not a PNG file (bad signature or too short)');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);
  if (type !== 'IHDR') throw new RangeError(`not a PNG file: first chunk is ${JSON.stringify(type)}, expected "IHDR"`);
  const colorType = bytes[25]!;
  const channels = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (channels === undefined) throw new RangeError(`PNG has unknown colour type ${colorType}`);
  return { width: v.getUint32(16), height: v.getUint32(20), channels };
}
