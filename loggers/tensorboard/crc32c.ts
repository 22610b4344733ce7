/**
 * CRC32C (Castagnoli) as TFRecord/event files need it, plus the "masked" form those files
 * store. Table-driven, one byte at a time: event files are small and written rarely, so
 * slicing-by-8 would add code without a measurable gain.
 */

/** Reflected Castagnoli polynomial 0x1EDC6F41 (RFC 3720 §B.4), bit-reversed. */
const CASTAGNOLI_REFLECTED = 0x82f63b78;

/**
 * TFRecord's mask delta (tensorflow/core/lib/hash/crc32c.h, `kMaskDelta`). Masking exists
 * because computing the CRC of a string that itself contains CRCs is weak.
 */
const MASK_DELTA = 0xa282ead8;

/** Builds the 256-entry table of a reflected CRC-32 with polynomial `poly`. */
export function makeCrc32Table(poly: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const TABLE = makeCrc32Table(CASTAGNOLI_REFLECTED);

/**
 * CRC32C of `bytes`. `crc32c(utf8("123456789")) === 0xe3069283` (the standard check value).
 * @param bytes data to checksum
 * @param initial a previous result, to continue a running checksum over several chunks
 * @returns the checksum as an unsigned 32-bit integer
 */
export function crc32c(bytes: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * Masks a CRC as TFRecord does: `((crc >>> 15) | (crc << 17)) + 0xa282ead8`, as uint32.
 * @param crc an unmasked CRC32C
 */
export function maskCrc32c(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + MASK_DELTA) >>> 0;
}

/** Inverse of {@link maskCrc32c}; used when reading records back. */
export function unmaskCrc32c(masked: number): number {
  const rotated = (masked - MASK_DELTA) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}

/** `maskCrc32c(crc32c(bytes))`: the value stored after a record's length and data. */
export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc32c(crc32c(bytes));
}
