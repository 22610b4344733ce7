import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * open_clip's `get_dataset_size`: the sample count of local shards from `sizes.json`
 * ({shard basename: count}) or `__len__` in the first shard's directory; undefined when
 * neither exists (or the shards are remote). A sizes.json that lacks a shard is an error
 * naming the shard.
 */
export function datasetSize(shards: readonly string[]): { total: number; from: string } | undefined {
  const first = shards[0];
  if (!first || /^(pipe:|https?:|s3:)/.test(first)) return undefined;
  const local = (u: string): string => (u.startsWith('file:') ? u.replace(/^file:(\/\/)?/, '') : u);
  const dir = path.dirname(local(first));
  const sizesFile = path.join(dir, 'sizes.json');
  if (existsSync(sizesFile)) {
    let sizes: Record<string, unknown>;
    try {
      sizes = JSON.parse(readFileSync(sizesFile, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${sizesFile}: not valid JSON (${(err as Error).message}); expected {"shard.tar": count, ...}`);
    }
    let total = 0;
    for (const s of shards) {
      const v = sizes[path.basename(local(s))];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${sizesFile}: no sample count for ${path.basename(local(s))} (expected {"${path.basename(local(s))}": count})`);
      total += v;
    }
    return { total, from: sizesFile };
  }
  const lenFile = path.join(dir, '__len__');
  if (existsSync(lenFile)) {
    const n = Number(readFileSync(lenFile, 'utf8').trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`${lenFile}: expected a sample count, got ${JSON.stringify(readFileSync(lenFile, 'utf8').slice(0, 40))}`);
    return { total: n, from: lenFile };
  }
  return undefined;
}
