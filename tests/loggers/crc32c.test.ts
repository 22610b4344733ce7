import { describe, expect, it } from 'vitest';
import { crc32c, maskCrc32c, maskedCrc32c, unmaskCrc32c } from '../../loggers/tensorboard/crc32c.js';
import { crc32 } from '../../loggers/tensorboard/png.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the Castagnoli check value of "123456789"', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  it('matches RFC 3720 B.4 test vectors', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
  });

  it('is 0 for empty input and can continue over chunks', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    const all = ascii('123456789');
    expect(crc32c(all.subarray(4), crc32c(all.subarray(0, 4)))).toBe(0xe3069283);
  });

  it('masks as ((crc >>> 15) | (crc << 17)) + 0xa282ead8, byte-exact', () => {
    // Computed independently (Python, bitwise CRC): mask(0xe3069283) = 0xc78ab0e5.
    expect(maskCrc32c(0xe3069283)).toBe(0xc78ab0e5);
    expect(maskedCrc32c(ascii('123456789'))).toBe(0xc78ab0e5);
    expect(unmaskCrc32c(0xc78ab0e5)).toBe(0xe3069283);
    // Always a uint32, even when the sum overflows.
    expect(maskCrc32c(0xffffffff)).toBe((0xffffffff + 0xa282ead8) % 2 ** 32);
  });
});

describe('crc32 (PNG/zlib)', () => {
  it('matches the IEEE check value of "123456789"', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
  });
});
