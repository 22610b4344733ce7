import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lz4Compress, lz4Decompress } from '../../../datamodules/deeplake/lz4.js';

/** Text-like data with repeats, a long run, and incompressible noise. */
function sample(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  const words = ['vintage ', 'poster ', 'a photo of ', 'cat ', '\u00e9t\u00e9 '].map((w) => Buffer.from(w));
  let i = 0;
  while (i < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const kind = x % 10;
    if (kind < 6) {
      const w = words[x % words.length]!;
      out.set(w.subarray(0, Math.min(w.length, n - i)), i);
      i += w.length;
    } else if (kind < 7) {
      const len = Math.min(300, n - i);
      out.fill(x & 255, i, i + len);
      i += len;
    } else {
      out[i++] = x >>> 24;
    }
  }
  return out;
}

/** Python with ctypes over the system liblz4 (an independent LZ4 implementation), or null. */
const LIBLZ4 = ['/usr/lib/x86_64-linux-gnu/liblz4.so.1', '/usr/lib/aarch64-linux-gnu/liblz4.so.1'].find((p) => existsSync(p));
function liblz4(mode: 'compress' | 'decompress', input: Uint8Array, size = 0): Uint8Array {
  const script = `
import ctypes, sys
lib = ctypes.CDLL(${JSON.stringify(LIBLZ4)})
data = sys.stdin.buffer.read()
if ${JSON.stringify(mode)} == 'compress':
    cap = lib.LZ4_compressBound(len(data))
    out = ctypes.create_string_buffer(cap)
    n = lib.LZ4_compress_default(data, out, len(data), cap)
    sys.stdout.buffer.write(len(data).to_bytes(4, 'little') + out.raw[:n])
else:
    out = ctypes.create_string_buffer(${size} + 1)
    n = lib.LZ4_decompress_safe(data[4:], out, len(data) - 4, ${size})
    if n != ${size}: sys.exit('LZ4_decompress_safe returned %d' % n)
    sys.stdout.buffer.write(out.raw[:n])
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input });
  if (r.status !== 0) throw new Error(String(r.stderr));
  return new Uint8Array(r.stdout);
}

describe('lz4 block codec', () => {
  it('round-trips empty, tiny, repetitive and noisy buffers', () => {
    for (const n of [0, 1, 5, 12, 13, 64, 1000, 70_000, 300_000]) {
      const data = sample(n, n + 3);
      const packed = lz4Compress(data);
      expect(lz4Decompress(packed)).toEqual(data);
      if (n > 1000) expect(packed.length).toBeLessThan(n);
    }
    expect([...lz4Compress(new Uint8Array(0))]).toEqual([0, 0, 0, 0, 0]);
  });

  it('rejects LZ4 frames, truncated blocks and bad offsets with the data named', () => {
    expect(() => lz4Decompress(Uint8Array.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]), 'URL/chunks/ab')).toThrow(/URL\/chunks\/ab: LZ4 frame format is not supported/);
    const packed = lz4Compress(sample(5000));
    expect(() => lz4Decompress(packed.subarray(0, packed.length - 10), 'c')).toThrow(/c: corrupt lz4 block/);
    // a match pointing before the start of the output
    expect(() => lz4Decompress(Uint8Array.from([8, 0, 0, 0, 0x14, 0x41, 0x09, 0x00, 0x00]), 'x')).toThrow(/bad match offset 9/);
  });

  it.skipIf(!LIBLZ4 || !existsSync('/usr/bin/python3'))('agrees with the system liblz4 both ways', () => {
    for (const n of [13, 777, 100_000]) {
      const data = sample(n, 7 * n);
      expect(lz4Decompress(liblz4('compress', data))).toEqual(data);
      expect(liblz4('decompress', lz4Compress(data), n)).toEqual(data);
    }
  });
});
