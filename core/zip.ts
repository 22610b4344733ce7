/**
 * A minimal read-only zip reader, enough for PyTorch checkpoints and YFCC15M's image zips: torch.save (≥ 1.6) writes
 * an uncompressed (STORED) zip whose entries are `<archive>/data.pkl`, `<archive>/data/<key>`
 * (one per storage, 64-byte aligned), `<archive>/version` and `<archive>/byteorder`, with
 * zip64 records once the file passes 4 GB. DEFLATE entries (a checkpoint re-zipped by a
 * user tool) are inflated with node's zlib.
 *
 * Only the central directory is read at open; each entry is read from disk when asked for,
 * so a multi-gigabyte checkpoint is never held in memory twice.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';

/** One file in the archive, as described by the central directory. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = STORED, 8 = DEFLATE; anything else is refused on read. */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Offset of the entry's local file header. */
  readonly localHeaderOffset: number;
  /** CRC-32 of the uncompressed data, from the central directory. */
  readonly crc32: number;
}

/** A file that is not a readable zip archive; the message names the file and the problem. */
export class ZipFormatError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`Invalid zip archive ${file}: ${detail}`);
    this.name = 'ZipFormatError';
  }
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
// The end-of-central-directory record is 22 bytes plus a comment of at most 65,535 bytes.
const MAX_EOCD_SEARCH = 22 + 0xffff;

/** Whether the first bytes are a zip local-file-header signature (`PK\x03\x04`). */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

function u64(view: DataView, at: number, file: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError(file, `a zip64 size or offset (${v}) exceeds 2^53`);
  return Number(v);
}

/**
 * An open zip archive. Use {@link ZipArchive.open}, read entries with {@link ZipArchive.read},
 * and {@link ZipArchive.close} it when done.
 */
export class ZipArchive {
  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    /** Entries by name, in central-directory order. */
    readonly entries: ReadonlyMap<string, ZipEntry>,
  ) {}

  /**
   * Opens `file` and parses its central directory (zip64 included).
   * @throws ZipFormatError when the file has no valid end-of-central-directory record.
   */
  static async open(file: string): Promise<ZipArchive> {
    const handle = await open(file, 'r');
    try {
      const entries = await readCentralDirectory(handle, file);
      return new ZipArchive(file, handle, entries);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Entry names, in archive order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * The uncompressed bytes of one entry.
   * @throws ZipFormatError for a missing entry, a bad local header or an unsupported method.
   */
  async read(name: string, options: { verifyCrc?: boolean } = {}): Promise<Buffer> {
    const out = await this.readUnchecked(name);
    if (options.verifyCrc) {
      const e = this.entries.get(name)!;
      const got = crc32(out) >>> 0;
      if (got !== e.crc32) throw new ZipFormatError(this.file, `entry "${name}" fails its CRC-32 check (${got.toString(16)} != ${e.crc32.toString(16)}): corrupt data`);
    }
    return out;
  }

  private async readUnchecked(name: string): Promise<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw new ZipFormatError(this.file, `no entry named "${name}"`);
    const local = await readAt(this.handle, e.localHeaderOffset, 30);
    const lv = new DataView(local.buffer, local.byteOffset, local.byteLength);
    if (local.length < 30 || lv.getUint32(0, true) !== LOCAL_SIG) {
      throw new ZipFormatError(this.file, `entry "${name}": no local file header at offset ${e.localHeaderOffset}`);
    }
    // The local header's name/extra lengths can differ from the central directory's
    // (torch pads the local extra field to align data to 64 bytes), so they are read here.
    const dataStart = e.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    const raw = await readAt(this.handle, dataStart, e.compressedSize);
    if (raw.length !== e.compressedSize) throw new ZipFormatError(this.file, `entry "${name}" is truncated`);
    if (e.method === 0) return raw;
    if (e.method === 8) {
      const out = inflateRawSync(raw);
      if (out.length !== e.uncompressedSize) {
        throw new ZipFormatError(this.file, `entry "${name}" inflates to ${out.length} bytes, expected ${e.uncompressedSize}`);
      }
      return out;
    }
    throw new ZipFormatError(this.file, `entry "${name}" uses compression method ${e.method}; only STORED (0) and DEFLATE (8) are supported`);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  // Buffer.alloc (not allocUnsafe) never hands out a slice of the shared pool, so the
  // result starts at byteOffset 0 and typed-array views over it are aligned.
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

async function readCentralDirectory(handle: FileHandle, file: string): Promise<Map<string, ZipEntry>> {
  const { size } = await handle.stat();
  const tailLen = Math.min(size, MAX_EOCD_SEARCH);
  const tail = await readAt(handle, size - tailLen, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipFormatError(file, 'no end-of-central-directory record (not a zip, or truncated)');
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: a 20-byte locator right before the EOCD points at the zip64 EOCD record.
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== ZIP64_LOCATOR_SIG) throw new ZipFormatError(file, 'zip64 sizes but no zip64 locator');
    const recOffset = u64(tv, loc + 8, file);
    const rec = await readAt(handle, recOffset, 56);
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rec.length < 56 || rv.getUint32(0, true) !== ZIP64_EOCD_SIG) throw new ZipFormatError(file, `no zip64 end-of-central-directory record at ${recOffset}`);
    count = u64(rv, 32, file);
    cdSize = u64(rv, 40, file);
    cdOffset = u64(rv, 48, file);
  }
  if (cdOffset + cdSize > size) throw new ZipFormatError(file, `central directory [${cdOffset}, ${cdOffset + cdSize}) lies beyond the end of the ${size}-byte file`);
  const cd = await readAt(handle, cdOffset, cdSize);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== CENTRAL_SIG) throw new ZipFormatError(file, `central directory entry ${i} is malformed`);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let uncompressedSize = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    // Zip64 extended information (header id 1) holds, in this order, only the fields whose
    // 32-bit slot is 0xFFFFFFFF.
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = cv.getUint16(q, true);
      const len = cv.getUint16(q + 2, true);
      if (id === 1) {
        let r = q + 4;
        if (uncompressedSize === 0xffffffff) {
          uncompressedSize = u64(cv, r, file);
          r += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(cv, r, file);
          r += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(cv, r, file);
      }
      q += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, uncompressedSize, localHeaderOffset, crc32: crc });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** The first `n` bytes of a file (format sniffing: zip `PK\x03\x04`, pickle `\x80`...). */
export async function readFileHead(file: string, n = 4): Promise<Buffer> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(n);
  try {
    await handle.read(head, 0, n, 0);
  } finally {
    await handle.close();
  }
  return head;
}
