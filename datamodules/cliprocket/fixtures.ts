import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

/**
 * Writers for generated fixtures (tests and `npm run bench -- --only=data`): a yfcc15m.pkl
 * as Python's pickle protocol 2 writes a list of (int, str, str) tuples — memoized strings,
 * repeated strings as BINGET, APPENDS batches of 1000 — and zip archives (stored or deflated,
 * with CRC-32). Not used at run time.
 */
export function writeYfccPickle(file: string, count: number, entry: (i: number) => [number, string, string], options: { protocol?: 2 | 4 } = {}): void {
  const fd = openSync(file, 'w');
  const chunks: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer): void => {
    chunks.push(b);
    size += b.length;
    if (size > 1 << 22) flush();
  };
  const flush = (): void => {
    if (chunks.length) writeSync(fd, Buffer.concat(chunks));
    chunks.length = 0;
    size = 0;
  };
  let memo = 0;
  const put = (): Buffer => {
    if (options.protocol === 4) {
      memo++;
      return Buffer.from([0x94]);
    }
    const k = memo++;
    if (k < 256) return Buffer.from([0x71, k]);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(k, 1);
    return b;
  };
  const strings = new Map<string, number>();
  const str = (s: string): Buffer => {
    const seen = strings.get(s);
    if (seen !== undefined) {
      if (seen < 256) return Buffer.from([0x68, seen]);
      const b = Buffer.alloc(5);
      b[0] = 0x6a;
      b.writeUInt32LE(seen, 1);
      return b;
    }
    const data = Buffer.from(s, 'utf8');
    let head: Buffer;
    if (options.protocol === 4 && data.length < 256) head = Buffer.from([0x8c, data.length]);
    else {
      head = Buffer.alloc(5);
      head[0] = 0x58;
      head.writeUInt32LE(data.length, 1);
    }
    // Only short, repeated strings are worth remembering (as pickle's memo would share them).
    if (s.length <= 2) strings.set(s, memo);
    return Buffer.concat([head, data, put()]);
  };
  const int = (v: number): Buffer => {
    if (v < 256) return Buffer.from([0x4b, v]);
    if (v < 65536) {
      const b = Buffer.alloc(3);
      b[0] = 0x4d;
      b.writeUInt16LE(v, 1);
      return b;
    }
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(v, 1);
    return b;
  };
  push(Buffer.from([0x80, options.protocol ?? 2, 0x5d]));
  push(put());
  for (let start = 0; start < count; start += 1000) {
    push(Buffer.from([0x28])); // MARK
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const [idx, t, d] = entry(i);
      push(Buffer.concat([int(idx), str(t), str(d), Buffer.from([0x87]), put()]));
    }
    push(Buffer.from([0x65])); // APPENDS
  }
  push(Buffer.from([0x2e]));
  flush();
  closeSync(fd);
}

/** A zip archive of `members` (method 8 when `deflate`), with CRC-32s; `badCrc` names members whose CRC is falsified. */
export function zipArchive(members: Array<[string, Uint8Array]>, options: { deflate?: boolean; badCrc?: string[] } = {}): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of members) {
    const nameBuf = Buffer.from(name, 'utf8');
    const body = options.deflate ? deflateRawSync(data) : Buffer.from(data);
    const crc = (crc32(data) ^ (options.badCrc?.includes(name) ? 1 : 0)) >>> 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(options.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(nameBuf.length, 26);
    locals.push(lh, nameBuf, body);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(options.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(nameBuf.length, 28);
    ch.writeUInt32LE(offset, 42);
    central.push(ch, nameBuf);
    offset += 30 + nameBuf.length + body.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(members.length, 8);
  eocd.writeUInt16LE(members.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}
