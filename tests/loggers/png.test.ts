import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodePng, PNG_SIGNATURE, readPngInfo } from '../../loggers/tensorboard/png.js';

async function decode(png: Uint8Array): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }> {
  return sharp(Buffer.from(png)).raw().toBuffer({ resolveWithObject: true });
}

describe('encodePng', () => {
  it('encodes RGB that sharp decodes to the same pixels', async () => {
    const width = 5;
    const height = 3;
    const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + 11) % 256);
    const png = encodePng({ width, height, channels: 3, data });
    expect([...png.subarray(0, 8)]).toEqual([...PNG_SIGNATURE]);
    expect(readPngInfo(png)).toEqual({ width, height, channels: 3 });
    const { data: out, info } = await decode(png);
    expect([info.width, info.height, info.channels]).toEqual([width, height, 3]);
    expect([...out]).toEqual([...data]);
  });

  it('encodes RGBA and gray', async () => {
    const rgba = Uint8Array.from({ length: 2 * 2 * 4 }, (_, i) => 255 - i * 13);
    const a = await decode(encodePng({ width: 2, height: 2, channels: 4, data: rgba }));
    expect(a.info.channels).toBe(4);
    expect([...a.data]).toEqual([...rgba]);
    const gray = Uint8Array.of(0, 64, 128, 255);
    const grayPng = encodePng({ width: 4, height: 1, channels: 1, data: gray });
    expect((await sharp(Buffer.from(grayPng)).metadata()).channels).toBe(1);
    // sharp's raw output of a gray PNG is sRGB: each gray value three times.
    const g = await decode(grayPng);
    expect([...g.data]).toEqual([...gray].flatMap((v) => [v, v, v]));
  });

  it('rejects sizes that do not match the data', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(/expected 2x2x3 = 12/);
    expect(() => readPngInfo(Uint8Array.of(1, 2, 3))).toThrow(/not a PNG/);
  });
});
