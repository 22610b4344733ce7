import type { Readable } from 'node:stream';
import { openShard, type OpenOptions } from './opener.js';
import { readTar, type TarEntry } from './tarReader.js';

/** One WebDataset sample: its members by (lower-cased) extension, plus `__key__`/`__url__`. */
export interface WdsSample {
  __key__: string;
  __url__: string;
  /** Members by extension ("jpg", "txt", "seg.png", ...). */
  files: Map<string, Buffer>;
}

/** webdataset's `base_plus_ext`: key = path up to the first dot of the last component. */
const BASE_PLUS_EXT = /^((?:.*\/|)[^.]+)[.]([^/]*)$/;
/** Members webdataset never groups (`__key__`, `__url__`, `__index__.json`...). */
const META = /^__[^/]*__($|\/)/;

export function splitKey(name: string): { key: string; ext: string } | null {
  const m = BASE_PLUS_EXT.exec(name);
  return m ? { key: m[1]!, ext: m[2]!.toLowerCase() } : null;
}

/**
 * Groups a tar's members into samples as webdataset's `group_by_keys` (open_clip's
 * `group_by_keys_nothrow`): non-regular entries, `__*__` names and names without a dot are
 * skipped; a new sample starts when the key changes or when an extension repeats within the
 * current sample. Grouping restarts at each shard (webdataset groups across the concatenated
 * stream of a worker, so a key shared by the last sample of one shard and the first of the
 * next would merge; keeping shards apart makes samples independent of the shard order).
 */
export async function* groupSamples(entries: AsyncIterable<TarEntry>, url: string): AsyncGenerator<WdsSample, void, undefined> {
  let current: WdsSample | null = null;
  for await (const e of entries) {
    if (e.type !== '0' && e.type !== '7') continue;
    if (META.test(e.name)) continue;
    const parts = splitKey(e.name);
    if (!parts) continue;
    if (current && (current.__key__ !== parts.key || current.files.has(parts.ext))) {
      yield current;
      current = null;
    }
    current ??= { __key__: parts.key, __url__: url, files: new Map() };
    current.files.set(parts.ext, e.data);
  }
  if (current) yield current;
}

/**
 * The samples of one shard, streamed. A shard that fails part-way (truncated tar, early end
 * of gzip, HTTP error, failed pipe command) throws after the samples read before the failure;
 * the caller counts it and moves on. The last, possibly incomplete sample before a failure is
 * dropped, so no sample is half-read.
 */
export async function* shardSamples(url: string, options: OpenOptions = {}): AsyncGenerator<WdsSample, void, undefined> {
  const stream: Readable = await openShard(url, options);
  try {
    // groupSamples yields a sample only once the next key (or the end) is seen, so a
    // failure never yields the sample it interrupted.
    yield* groupSamples(readTar(stream, url), url);
  } finally {
    stream.destroy();
  }
}
