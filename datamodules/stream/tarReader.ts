/**
 * A streaming tar reader (POSIX ustar, pax extended headers `x`/`g`, GNU long names `L`/`K`,
 * base-256 sizes), written here rather than taken from tar-stream so that truncation and
 * header corruption are reported as errors naming the archive and the member, and so that
 * entries come out as an async iterator with their bytes (WebDataset members are small).
 * Header checksums are verified. An archive ending at a header boundary without the two zero
 * blocks is accepted, as Python's tarfile does; one ending inside a header or member is not.
 */

const BLOCK = 512;

/** One archive member. `data` holds the bytes of regular files (empty for other types). */
export interface TarEntry {
  name: string;
  /** '0' regular file, '5' directory, '1'/'2' links, ... (ustar typeflag, '\0' read as '0'). */
  type: string;
  size: number;
  linkName: string;
  mode: number;
  data: Buffer;
}

/** A tar archive that cannot be read further (truncated, bad header). */
export class TarFormatError extends Error {
  constructor(readonly source: string, detail: string) {
    super(`${source}: ${detail}`);
    this.name = 'TarFormatError';
  }
}

/** Pulls exact byte counts out of a chunked stream. */
class ChunkReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private done = false;
  /** Bytes consumed so far (for error messages). */
  offset = 0;
  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array | string>) {}

  /** Up to `n` bytes; fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        if (b.length > 0) {
          this.chunks.push(b);
          this.have += b.length;
        }
      }
    }
    const take = Math.min(n, this.have);
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    this.offset += take;
    return out;
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function numeric(b: Buffer, start: number, len: number): number {
  const field = b.subarray(start, start + len);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    let v = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numeric(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : h[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(data.subarray(pos, sp).toString('latin1'), 10);
    if (!(len > 0) || pos + len > data.length) throw new TarFormatError(source, `bad pax extended header record at byte ${pos}`);
    const record = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Yields the members of an uncompressed tar stream in order (decompress gzip first; see
 * opener.ts). Throws {@link TarFormatError} at the point where the archive stops being
 * readable; members before it have already been yielded.
 */
export async function* readTar(stream: AsyncIterable<Buffer | Uint8Array | string>, source: string): AsyncGenerator<TarEntry, void, undefined> {
  const reader = new ChunkReader(stream[Symbol.asyncIterator]());
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const at = reader.offset;
    const h = await reader.read(BLOCK);
    if (h.length === 0) return;
    if (h.length < BLOCK) throw new TarFormatError(source, `truncated: the archive ends inside a header at byte ${at} (${h.length} of 512 bytes)`);
    if (h.every((v) => v === 0)) return; // end-of-archive marker (a second block may follow)
    if (!checksumOk(h)) throw new TarFormatError(source, `bad header checksum at byte ${at}: not a tar archive, or corrupt`);
    const type = String.fromCharCode(h[156]! || 0x30);
    const headerSize = numeric(h, 124, 12);
    // A pax `size` record overrides the header's (members over 8 GiB).
    const paxSize = type !== 'x' && type !== 'g' ? (pax?.size ?? globalPax.size) : undefined;
    const size = paxSize !== undefined ? Number(paxSize) : headerSize;
    if (!Number.isFinite(size) || size < 0) throw new TarFormatError(source, `bad size field in the header at byte ${at}`);
    let name = cstring(h, 0, 100);
    const magic = h.subarray(257, 263).toString('latin1');
    if (magic.startsWith('ustar')) {
      const prefix = cstring(h, 345, magic === 'ustar\0' ? 155 : 0);
      if (prefix) name = `${prefix}/${name}`;
    }
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const body = await reader.read(padded);
    if (body.length < padded && body.length < size) {
      throw new TarFormatError(source, `truncated: member ${JSON.stringify(longName ?? pax?.path ?? name)} should have ${size} bytes, the archive ends after ${body.length}`);
    }
    const data = body.subarray(0, size);
    if (type === 'x') {
      pax = parsePax(data, source);
      continue;
    }
    if (type === 'g') {
      globalPax = { ...globalPax, ...parsePax(data, source) };
      continue;
    }
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (type === 'K') {
      longLink = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const ext = { ...globalPax, ...(pax ?? {}) };
    const entry: TarEntry = {
      // Python's tarfile drops the trailing slash of directory names.
      name: (longName ?? ext.path ?? name).replace(/(.)\/+$/, '$1'),
      type,
      size,
      linkName: longLink ?? ext.linkpath ?? cstring(h, 157, 100),
      mode: numeric(h, 100, 8),
      data: type === '0' || type === '7' ? Buffer.from(data) : Buffer.alloc(0),
    };
    pax = null;
    longName = null;
    longLink = null;
    yield entry;
  }
}
