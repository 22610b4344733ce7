import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarArchive } from '../../../datamodules/stream/tarWriter.js';
import { solid } from '../helpers.js';

/** python3 with the given modules, or null (tests using it skip with a printed reason). */
export function python(modules: string[] = []): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', modules.map((m) => `import ${m}`).join(';') || 'pass'], { encoding: 'utf8' });
  return r.status === 0 ? '/usr/bin/python3' : null;
}

export function runPython(code: string, args: string[] = []): string {
  const r = spawnSync('/usr/bin/python3', ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

/** A distinct tiny PNG per sample id (colour from the id), so rows can be told apart. */
export async function sampleImage(id: number): Promise<Buffer> {
  return solid(8, 8, [(id * 37) % 256, (id * 91) % 256, (id * 13) % 256]);
}

/**
 * Writes `shards` shards of `perShard` samples each: `s{shard}_{i}.png` + `.txt` ("caption
 * <global id>"), named `{dir}/shard-{k}.tar`; returns the shard paths and writes sizes.json.
 */
export async function writeShards(dir: string, shards: number, perShard: number, opts: { gzip?: boolean; sizes?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const sizes: Record<string, number> = {};
  let id = 0;
  for (let k = 0; k < shards; k++) {
    const members: Array<[string, Uint8Array | string]> = [];
    for (let i = 0; i < perShard; i++, id++) {
      members.push([`s${String(id).padStart(5, '0')}.png`, await sampleImage(id)]);
      members.push([`s${String(id).padStart(5, '0')}.txt`, `caption ${id}`]);
    }
    const name = `shard-${String(k).padStart(3, '0')}.tar${opts.gzip ? '.gz' : ''}`;
    const tar = tarArchive(members);
    await writeFile(path.join(dir, name), opts.gzip ? gzipSync(tar) : tar);
    sizes[name] = perShard;
    out.push(path.join(dir, name));
  }
  if (opts.sizes !== false) await writeFile(path.join(dir, 'sizes.json'), JSON.stringify(sizes));
  return out;
}
