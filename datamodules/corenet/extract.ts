import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, symlink, link, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openShard } from '../stream/opener.js';
import { readTar } from '../stream/tarReader.js';

/** A member that would land outside the extraction directory (absolute, `..`, or an escaping link). */
export class UnsafeArchiveError extends Error {
  constructor(archive: string, member: string, why: string) {
    super(`${archive}: refusing member ${JSON.stringify(member)}: ${why}`);
    this.name = 'UnsafeArchiveError';
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Extracts a (gzipped) tar into `dest`, refusing before writing anything unsafe: absolute
 * names, names with `..` components, and symbolic or hard links whose target resolves outside
 * `dest`. Regular files, directories and safe links are created; other types are skipped.
 */
export async function extractTarSafely(archive: string, dest: string): Promise<number> {
  await mkdir(dest, { recursive: true });
  let n = 0;
  const stream = await openShard(archive);
  try {
    for await (const e of readTar(stream, archive)) {
      const name = e.name;
      if (path.isAbsolute(name) || /^[A-Za-z]:[\\/]/.test(name)) throw new UnsafeArchiveError(archive, name, 'absolute path');
      if (name.split(/[\\/]/).includes('..')) throw new UnsafeArchiveError(archive, name, "'..' in the path");
      const target = path.join(dest, name);
      if (!inside(dest, target)) throw new UnsafeArchiveError(archive, name, 'outside the cache directory');
      if (e.type === '5') {
        await mkdir(target, { recursive: true });
      } else if (e.type === '0' || e.type === '7') {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, e.data);
        n++;
      } else if (e.type === '2' || e.type === '1') {
        const linkTarget = e.type === '2' ? path.resolve(path.dirname(target), e.linkName) : path.join(dest, e.linkName);
        if (path.isAbsolute(e.linkName) && e.type === '2') throw new UnsafeArchiveError(archive, name, `symbolic link to the absolute path ${JSON.stringify(e.linkName)}`);
        if (!inside(dest, linkTarget)) throw new UnsafeArchiveError(archive, name, `link to ${JSON.stringify(e.linkName)} leads outside the cache directory`);
        await mkdir(path.dirname(target), { recursive: true });
        if (e.type === '2') await symlink(e.linkName, target);
        else await link(linkTarget, target);
      }
    }
  } finally {
    stream.destroy();
  }
  return n;
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create), as CoreNet guards its cache move
 * with fcntl: other processes wait (polling) until it is released; a lock older than
 * `staleMs` (a crashed holder) is broken.
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, staleMs = 10 * 60_000): Promise<T> {
  await mkdir(path.dirname(lockFile), { recursive: true });
  for (;;) {
    try {
      const h = await open(lockFile, 'wx');
      await h.writeFile(String(process.pid));
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await stat(lockFile).catch(() => null);
      if (st && Date.now() - st.mtimeMs > staleMs) await rm(lockFile, { force: true });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

/**
 * CoreNet's "download once": `<folder>.tar.gz` must unpack to the directory `<folder>/`, which
 * is moved into `cacheDir/<folder>` under a lock (so concurrent ranks and workers extract it
 * once). Returns the cached directory.
 */
export async function ensureExtracted(archive: string, folder: string, cacheDir: string): Promise<string> {
  const final = path.join(cacheDir, folder);
  if (existsSync(final)) return final;
  return withLock(path.join(cacheDir, `${folder}.lock`), async () => {
    if (existsSync(final)) return final;
    const tmp = path.join(cacheDir, `.extract-${folder}-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    try {
      await extractTarSafely(archive, tmp);
      const unpacked = path.join(tmp, folder);
      if (!existsSync(unpacked)) throw new Error(`${archive}: expected it to unpack to the directory ${JSON.stringify(folder + '/')}, which it does not contain`);
      await rename(unpacked, final);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return final;
  });
}
