/**
 * Crash-safe file replacement. Lives apart from `io.ts` so that `safetensors.ts` can use it
 * without importing the checkpoint layer above it (`io.ts` re-exports it).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Bytes to write: one buffer, or chunks produced one at a time (so large files never sit in memory whole). */
export type FileBytes = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes `bytes` to `filePath` so that readers see either the old file or the complete new
 * one, never a prefix: the bytes go to a temporary file in the same directory (a rename is
 * only atomic within one file system), which is fsynced, renamed over `filePath`, and then
 * the directory is fsynced so the rename itself survives a power loss. If anything throws
 * (including a chunk producer), the temporary file is removed and `filePath` is untouched.
 * @param filePath destination; its directory must exist.
 * @param bytes one buffer or an (async) iterable of chunks.
 */
export async function atomicWriteFile(filePath: string, bytes: FileBytes): Promise<void> {
  const dir = path.dirname(path.resolve(filePath));
  // Dot-prefixed and random so that concurrent writers (two ranks, two callbacks) never collide
  // and directory listings of checkpoints (`*.ckpt`) do not pick it up.
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx');
  try {
    try {
      if (bytes instanceof Uint8Array) {
        await writeAll(handle, bytes);
      } else {
        for await (const chunk of bytes) await writeAll(handle, chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, filePath);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDirectory(dir);
}

async function writeAll(handle: fs.FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * fsyncs a directory so a rename inside it is durable. Windows cannot open directories
 * for syncing (EISDIR/EPERM) and some file systems reject fsync on them (EINVAL); there
 * the rename is as durable as the OS makes it, which is the best available.
 */
async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw err;
  } finally {
    await handle?.close();
  }
}
