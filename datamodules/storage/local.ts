import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { checkKey, StorageError, StorageNotFoundError, type ByteRange, type Storage } from './types.js';

/** A local directory as a {@link Storage}; ranged reads use positioned reads, not whole files. */
export class LocalStorage implements Storage {
  readonly root: string;

  constructor(dir: string) {
    this.root = path.resolve(dir);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const file = path.join(this.root, checkKey(key));
    try {
      if (!range) return new Uint8Array(await fs.readFile(file));
      const fh = await fs.open(file, 'r');
      try {
        const size = (await fh.stat()).size;
        const end = Math.min(range.end, size);
        const len = Math.max(0, end - range.start);
        const buf = new Uint8Array(len);
        let done = 0;
        while (done < len) {
          const { bytesRead } = await fh.read(buf, done, len - done, range.start + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done === len ? buf : buf.subarray(0, done);
      } finally {
        await fh.close();
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new StorageNotFoundError(this.root, key);
      if (code === 'EISDIR') throw new StorageError(`${file}: is a directory, expected a file`, key);
      throw new StorageError(`${file}: ${(err as Error).message}`, key, { cause: err });
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fs.stat(path.join(this.root, checkKey(key)))).isFile();
    } catch {
      return false;
    }
  }

  async list(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(key);
        else if (e.isFile()) out.push(key);
      }
    };
    const dir = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(checkKey(dir));
    return out.filter((k) => k.startsWith(prefix)).sort();
  }
}
