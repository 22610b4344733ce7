import { createWriteStream, type WriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';

const BLOCK = 512;

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

/** A ustar header block (the name must fit in 100 bytes). */
function header(name: string, size: number, type: string, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

/** The bytes of one member: a ustar header (plus a pax header for long names), data, padding. */
export function tarMember(name: string, data: Uint8Array, mtime = 0): Buffer {
  const parts: Buffer[] = [];
  if (Buffer.byteLength(name) > 100) {
    const pax = paxRecord('path', name);
    parts.push(header('PaxHeader/' + name.slice(0, 80).replace(/[^\x20-\x7e]/g, '_'), pax.length, 'x', mtime), pax, Buffer.alloc((BLOCK - (pax.length % BLOCK)) % BLOCK));
    name = name.slice(-99).replace(/^[^/]*\//, '');
  }
  parts.push(header(name, data.length, '0', mtime), Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  return Buffer.concat(parts);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** A whole archive in memory (tests, small shards). */
export function tarArchive(members: Array<[string, Uint8Array | string]>): Buffer {
  return Buffer.concat([...members.map(([n, d]) => tarMember(n, typeof d === 'string' ? Buffer.from(d) : d)), TAR_END]);
}

/**
 * webdataset's `ShardWriter`: samples (`{__key__, ext: bytes}`) into `pattern` shards
 * (`%06d` replaced by the shard number), a new shard after `maxcount` samples or `maxsize`
 * bytes. Each shard is written to `<name>.tmp` and renamed when complete, so a crash never
 * leaves a truncated shard under the final name. `close()` returns {basename: count}, what
 * sizes.json holds.
 */
export class ShardWriter {
  private out: WriteStream | null = null;
  private current = '';
  private shard = -1;
  private count = 0;
  private bytes = 0;
  readonly sizes: Record<string, number> = {};

  constructor(
    private readonly pattern: string,
    private readonly maxcount = 100000,
    private readonly maxsize = 3e9,
  ) {
    if (!/%0?\d*d/.test(pattern)) throw new Error(`shard pattern ${JSON.stringify(pattern)} needs a %06d-style number`);
  }

  async write(sample: { __key__: string; files: Record<string, Uint8Array | string> }): Promise<void> {
    if (!this.out || this.count >= this.maxcount || this.bytes >= this.maxsize) await this.next();
    if (sample.__key__.includes('.')) throw new Error(`sample key ${JSON.stringify(sample.__key__)} contains a dot (webdataset splits keys at the first dot)`);
    for (const [ext, data] of Object.entries(sample.files)) {
      const m = tarMember(`${sample.__key__}.${ext}`, typeof data === 'string' ? Buffer.from(data) : data);
      this.bytes += m.length;
      if (!this.out!.write(m)) await new Promise<void>((r) => this.out!.once('drain', () => r()));
    }
    this.count++;
    this.sizes[this.current.split('/').pop()!] = this.count;
  }

  private async next(): Promise<void> {
    await this.finish();
    this.shard++;
    this.current = this.pattern.replace(/%(0?)(\d*)d/, (_, zero: string, width: string) => String(this.shard).padStart(Number(width || 0), zero ? '0' : ' '));
    this.out = createWriteStream(this.current + '.tmp');
    this.count = 0;
    this.bytes = 0;
  }

  private async finish(): Promise<void> {
    const out = this.out;
    if (!out) return;
    this.out = null;
    out.write(TAR_END);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await rename(this.current + '.tmp', this.current);
  }

  async close(): Promise<Record<string, number>> {
    await this.finish();
    return this.sizes;
  }
}
