/**
 * Reader of Deep Lake v3 datasets (deeplake 3.9.x) over any {@link Storage}: metas, the
 * version tree (any branch or commit), the chunk-id encoder, chunk files, tiles and links.
 * `DeepLakeTensor.raw(i)` gives the stored bytes of sample `i` (a JPEG stays a JPEG);
 * `DeepLakeTensor.value(i)` decodes it (text, JSON, numbers). Chunks are cached in one
 * byte-bounded LRU per dataset. Spec: research/data-formats.md §1a.
 */
import { StorageNotFoundError, type Storage } from '../storage/types.js';
import { parseDeepLakeJson, toTypedArray, type NumericArray } from './decode.js';
import {
  chunkSampleRange, chunkSampleShape, DeepLakeFormatError, findRow, parseChunk, parseChunkIndex, parseTileIndex,
  type Chunk, type ChunkIndex, type TileIndex,
} from './format.js';
import { LruCache } from './lru.js';
import { lz4Decompress } from './lz4.js';
import {
  BYTE_HTYPES, CHUNK_COMPRESSIONS, FIRST_COMMIT_ID, numericDtype, normalizeTensorMeta, SAMPLE_COMPRESSIONS,
  type DatasetMeta, type TensorMeta, type VersionControlInfo,
} from './meta.js';

/** A bad dataset, tensor or request: the message names the dataset and tensor. */
export class DeepLakeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeepLakeError';
  }
}

export interface OpenOptions {
  /** Branch to read (default `main`). Excludes `commit`. */
  branch?: string;
  /** Commit id to read (any commit of `version_control_info.json`). */
  commit?: string;
  /** LRU budget for decoded chunks, bytes. Default 256 MB. */
  cacheBytes?: number;
  /** Fetches a `link[...]` target (a path, http(s) URL or s3:// URL). Default: {@link defaultLinkFetcher}. */
  fetchLink?: (url: string) => Promise<Uint8Array>;
}

/** Stored bytes of one sample, before image decoding. */
export interface RawSample {
  shape: number[];
  /** The stored bytes: a JPEG/PNG file for image sample compression, else raw little-endian values / UTF-8. */
  bytes: Uint8Array;
  /** `jpeg`/`png` when `bytes` is an encoded image; null for raw values. */
  imageCompression: 'jpeg' | 'png' | null;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

async function readJson<T>(storage: Storage, key: string, what: string): Promise<T> {
  const bytes = await storage.get(key);
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch (err) {
    throw new DeepLakeError(`${what}: ${key} is not valid JSON (${(err as Error).message})`);
  }
}

/** A parsed chunk plus its decompressed data, as cached. */
interface LoadedChunk extends Chunk {
  nbytes: number;
}

export class DeepLakeDataset {
  /** Visible tensors by name (hidden ones through {@link tensor} with `{ hidden: true }`). */
  readonly tensors = new Map<string, DeepLakeTensor>();
  readonly cache: LruCache<LoadedChunk>;
  private readonly hiddenTensors = new Map<string, DeepLakeTensor>();
  private readonly chunkSets = new Map<string, Promise<Map<string, string>>>();

  private constructor(
    readonly storage: Storage,
    /** The commit read (a branch's head, usually uncommitted). */
    readonly commitId: string,
    /** Its branch. */
    readonly branch: string,
    readonly versionInfo: VersionControlInfo | null,
    readonly meta: DatasetMeta,
    cacheBytes: number,
    readonly fetchLink: (url: string) => Promise<Uint8Array>,
  ) {
    this.cache = new LruCache(cacheBytes);
  }

  /** Where the dataset lives (no secrets). */
  get root(): string {
    return this.storage.root;
  }

  /** Opens a dataset: its version tree, the chosen commit's metas and every tensor's chunk index. */
  static async open(storage: Storage, options: OpenOptions = {}): Promise<DeepLakeDataset> {
    const root = storage.root;
    if (options.branch !== undefined && options.commit !== undefined) throw new DeepLakeError(`${root}: give --branch or --commit, not both`);
    let info: VersionControlInfo | null = null;
    try {
      info = await readJson<VersionControlInfo>(storage, 'version_control_info.json', root);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
      if (await storage.exists('version_control_info')) {
        throw new DeepLakeError(`${root}: a pickled version_control_info (deeplake < 3.x) is not supported; open and save the dataset with deeplake 3.x first`);
      }
    }
    let commitId = FIRST_COMMIT_ID;
    let branch = 'main';
    if (info) {
      if (!info.commits || !info.branches) throw new DeepLakeError(`${root}: version_control_info.json lacks "commits" or "branches"`);
      if (options.commit !== undefined) {
        const c = info.commits[options.commit];
        if (!c) throw new DeepLakeError(`${root}: no commit ${JSON.stringify(options.commit)} (commits: ${Object.keys(info.commits).join(', ')})`);
        commitId = options.commit;
        branch = c.branch;
      } else {
        branch = options.branch ?? 'main';
        const head = info.branches[branch];
        if (!head) throw new DeepLakeError(`${root}: no branch ${JSON.stringify(branch)} (branches: ${Object.keys(info.branches).join(', ')})`);
        commitId = head;
      }
    } else if (options.commit !== undefined && options.commit !== FIRST_COMMIT_ID) {
      throw new DeepLakeError(`${root}: the dataset has no version history, so no commit ${JSON.stringify(options.commit)}`);
    } else if (options.branch !== undefined && options.branch !== 'main') {
      throw new DeepLakeError(`${root}: the dataset has no version history, so no branch ${JSON.stringify(options.branch)} (only main)`);
    }
    const prefix = commitPrefix(commitId);
    let meta: DatasetMeta;
    try {
      meta = await readJson<DatasetMeta>(storage, `${prefix}dataset_meta.json`, root);
    } catch (err) {
      if (err instanceof StorageNotFoundError) {
        throw new DeepLakeError(`${root} is not a Deep Lake v3 dataset: no ${prefix}dataset_meta.json${info ? ` for commit ${commitId}` : ''}`);
      }
      throw err;
    }
    if (!meta || !Array.isArray(meta.tensors)) throw new DeepLakeError(`${root}: ${prefix}dataset_meta.json has no "tensors" list`);
    const ds = new DeepLakeDataset(storage, commitId, branch, info, meta, options.cacheBytes ?? 256e6, options.fetchLink ?? defaultLinkFetcher);
    const hidden = new Set(meta.hidden_tensors ?? []);
    const names = meta.tensor_names ?? Object.fromEntries(meta.tensors.map((k) => [k, k]));
    // in parallel: over hub:// or s3:// each tensor costs a few round trips
    const loaded = await Promise.all(Object.entries(names).map(([name, key]) => DeepLakeTensor.load(ds, name, key)));
    for (const t of loaded) {
      if (hidden.has(t.key) || hidden.has(t.name) || t.meta.hidden) ds.hiddenTensors.set(t.name, t);
      else ds.tensors.set(t.name, t);
    }
    return ds;
  }

  /** Number of samples: the shortest visible tensor (deeplake's `len(ds)`). */
  get length(): number {
    let n = Infinity;
    for (const t of this.tensors.values()) n = Math.min(n, t.length);
    return n === Infinity ? 0 : n;
  }

  /** Commits from the current one up to the root. */
  get commitChain(): string[] {
    const out: string[] = [];
    let c: string | null = this.commitId;
    while (c) {
      out.push(c);
      c = this.versionInfo?.commits[c]?.parent ?? null;
      if (out.length > 100_000) throw new DeepLakeError(`${this.root}: version_control_info.json has a parent cycle`);
    }
    return out;
  }

  /** A tensor by name; unknown names are an error listing the tensors. */
  tensor(name: string, options: { hidden?: boolean } = {}): DeepLakeTensor {
    const t = this.tensors.get(name) ?? (options.hidden ? this.hiddenTensors.get(name) : undefined);
    if (!t) throw new DeepLakeError(`${this.root}: no tensor ${JSON.stringify(name)} (tensors: ${[...this.tensors.keys()].join(', ') || 'none'})`);
    return t;
  }

  hasTensor(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Hidden tensor names (`_URL_id`, `_URL_shape`...). */
  get hiddenNames(): string[] {
    return [...this.hiddenTensors.keys()];
  }

  /**
   * The storage key of chunk `name` of tensor `key` at the current commit: the first commit
   * up the chain whose `chunk_set` lists it (entries `name[:commit[:key]]`), else the root.
   */
  async chunkKey(key: string, name: string): Promise<string> {
    for (const commit of this.commitChain) {
      if (commit === FIRST_COMMIT_ID) break;
      const set = await this.chunkSet(commit, key);
      const hit = set.get(name);
      if (hit !== undefined) return hit;
    }
    return `${key}/chunks/${name}`;
  }

  private chunkSet(commit: string, key: string): Promise<Map<string, string>> {
    const id = `${commit}/${key}`;
    let p = this.chunkSets.get(id);
    if (!p) {
      p = (async () => {
        const map = new Map<string, string>();
        let text: string;
        try {
          text = decoder.decode(await this.storage.get(`versions/${commit}/${key}/chunk_set`));
        } catch (err) {
          if (err instanceof StorageNotFoundError) return map;
          throw err;
        }
        for (const entry of text.split(',')) {
          const e = entry.trim();
          if (!e) continue;
          const [name, c, k] = e.split(':');
          map.set(name!, `versions/${c || commit}/${k || key}/chunks/${name}`);
        }
        return map;
      })();
      this.chunkSets.set(id, p);
    }
    return p;
  }

  /** A chunk through the LRU, its data section decompressed when the tensor uses chunk compression. */
  loadChunk(storageKey: string, chunkCompression: string | null): Promise<LoadedChunk> {
    return this.cache.load(
      storageKey,
      async () => {
        const bytes = await this.storage.get(storageKey);
        const what = `${this.root}/${storageKey}`;
        const c = parseChunk(bytes, what);
        const data = chunkCompression === 'lz4' && c.data.length > 0 ? lz4Decompress(c.data, what) : c.data;
        return { ...c, data, nbytes: data.length + c.shapes.byteLength + c.bytes.byteLength };
      },
      (c) => c.nbytes,
    );
  }
}

/** `""` for the root commit, else `versions/<id>/`. */
export function commitPrefix(commit: string): string {
  return commit === FIRST_COMMIT_ID ? '' : `versions/${commit}/`;
}

export class DeepLakeTensor {
  private constructor(
    readonly dataset: DeepLakeDataset,
    readonly name: string,
    readonly key: string,
    readonly meta: TensorMeta,
    /** `tensor_info.json` (class_names for class_label), `{}` when absent. */
    readonly info: Record<string, unknown>,
    readonly index: ChunkIndex,
    readonly tiles: TileIndex | null,
    /** Numeric dtype of the samples, or null for text/json/list. */
    readonly dtype: string | null,
  ) {}

  static async load(ds: DeepLakeDataset, name: string, key: string): Promise<DeepLakeTensor> {
    const prefix = `${commitPrefix(ds.commitId)}${key}/`;
    const where = `${ds.root}: tensor ${JSON.stringify(name)}`;
    let metaRaw: Record<string, unknown>;
    try {
      metaRaw = await readJson<Record<string, unknown>>(ds.storage, `${prefix}tensor_meta.json`, where);
    } catch (err) {
      if (err instanceof StorageNotFoundError) throw new DeepLakeError(`${where}: missing ${prefix}tensor_meta.json`);
      throw err;
    }
    const meta = normalizeTensorMeta(metaRaw);
    let info: Record<string, unknown> = {};
    try {
      info = await readJson<Record<string, unknown>>(ds.storage, `${prefix}tensor_info.json`, where);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
    }
    let index: ChunkIndex = { version: meta.version, names: [], lasts: new Float64Array(0) };
    try {
      index = parseChunkIndex(await ds.storage.get(`${prefix}chunks_index/unsharded`), `${ds.root}/${prefix}chunks_index/unsharded`);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError) || meta.length > 0) {
        if (err instanceof StorageNotFoundError) throw new DeepLakeError(`${where}: missing ${prefix}chunks_index/unsharded for ${meta.length} samples`);
        throw err;
      }
    }
    let tiles: TileIndex | null = null;
    try {
      tiles = parseTileIndex(await ds.storage.get(`${prefix}tiles_index/unsharded`), `${ds.root}/${prefix}tiles_index/unsharded`);
      if (tiles.entries.size === 0) tiles = null;
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
    }
    const isBytes = BYTE_HTYPES.has(meta.htype) || meta.is_link;
    const dtype = isBytes ? null : numericDtype(meta);
    return new DeepLakeTensor(ds, name, key, meta, info, index, tiles, dtype);
  }

  get length(): number {
    return this.meta.length;
  }

  get htype(): string {
    return this.meta.is_link ? `link[${this.meta.htype}]` : this.meta.htype;
  }

  /** `class_names` of a class_label tensor (from tensor_info.json), else []. */
  get classNames(): string[] {
    const v = this.info.class_names;
    return Array.isArray(v) ? v.map(String) : [];
  }

  /** Rows of the chunk index (chunks, or tiles of tiled samples). */
  get numChunks(): number {
    return this.index.names.length;
  }

  /** Global index range `[start, end)` of chunk row `r` (empty for rows that hold tiles of an earlier sample). */
  chunkRange(r: number): [number, number] {
    const prev = r === 0 ? -1 : this.index.lasts[r - 1]!;
    return [prev + 1, this.index.lasts[r]! + 1];
  }

  private describe(): string {
    return `${this.dataset.root}: tensor ${JSON.stringify(this.name)}`;
  }

  /** Throws when the tensor's htype/compression is one this reader cannot decode. */
  checkSupported(): void {
    const m = this.meta;
    if (!SAMPLE_COMPRESSIONS.has(m.sample_compression)) {
      throw new DeepLakeError(`${this.describe()}: sample compression ${JSON.stringify(m.sample_compression)} is not supported (supported: jpeg, png, lz4, none)`);
    }
    if (!CHUNK_COMPRESSIONS.has(m.chunk_compression)) {
      throw new DeepLakeError(`${this.describe()}: chunk compression ${JSON.stringify(m.chunk_compression)} is not supported (supported: lz4, none)`);
    }
    if (m.is_sequence) throw new DeepLakeError(`${this.describe()}: sequence[...] tensors are not supported`);
    if (!BYTE_HTYPES.has(m.htype) && !m.is_link && this.dtype === null) {
      throw new DeepLakeError(`${this.describe()}: htype ${JSON.stringify(m.htype)} with dtype ${JSON.stringify(m.dtype ?? m.typestr)} is not supported (expected text, json, list, tag, class_label, image or a numeric dtype)`);
    }
  }

  /** Stored bytes and shape of sample `i`. Tiled samples are reassembled (raw, C order). */
  async raw(i: number): Promise<RawSample> {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new DeepLakeError(`${this.describe()}: sample ${i} out of range [0, ${this.length})`);
    this.checkSupported();
    const m = this.meta;
    const r = findRow(this.index.lasts, 1, i);
    if (r >= this.index.names.length) throw new DeepLakeError(`${this.describe()}: the chunk index has no row for sample ${i}`);
    const tile = this.tiles?.entries.get(i);
    if (tile) return this.rawTiled(i, r, tile);
    const local = i - (r === 0 ? 0 : this.index.lasts[r - 1]! + 1);
    const storageKey = await this.dataset.chunkKey(this.key, this.index.names[r]!);
    const chunk = await this.dataset.loadChunk(storageKey, m.chunk_compression);
    const what = `${this.dataset.root}/${storageKey}`;
    let shape = chunkSampleShape(chunk, local, what);
    let range = chunkSampleRange(chunk, local, what);
    if (!range) {
      shape ??= m.max_shape;
      const size = shape.reduce((a, b) => a * b, 1) * (this.dtype ? itemSize(this.dtype) : 1);
      range = { start: local * size, end: (local + 1) * size };
    }
    if (range.end > chunk.data.length) {
      throw new DeepLakeFormatError(`${what}: sample ${i} needs bytes [${range.start}, ${range.end}) but the chunk has ${chunk.data.length} data bytes (truncated chunk?)`);
    }
    let bytes = chunk.data.subarray(range.start, range.end);
    shape ??= m.max_shape;
    let imageCompression: RawSample['imageCompression'] = null;
    const sc = m.sample_compression;
    if (m.is_link) {
      // links are always stored uncompressed: the URL's UTF-8
    } else if (sc === 'lz4') {
      bytes = bytes.length ? lz4Decompress(bytes, `${what} sample ${i}`) : bytes;
    } else if (sc === 'jpeg' || sc === 'jpg' || sc === 'png') {
      imageCompression = bytes.length === 0 ? null : sc === 'png' ? 'png' : 'jpeg';
    }
    return { shape, bytes, imageCompression };
  }

  private async rawTiled(i: number, r: number, tile: { sampleShape: number[]; tileShape: number[] }): Promise<RawSample> {
    const m = this.meta;
    if (!this.dtype) throw new DeepLakeError(`${this.describe()}: tiled ${m.htype} samples are not supported`);
    const size = itemSize(this.dtype);
    const { sampleShape, tileShape } = tile;
    const grid = sampleShape.map((s, d) => Math.ceil(s / tileShape[d]!));
    const nTiles = grid.reduce((a, b) => a * b, 1);
    let rows = 0;
    while (r + rows < this.index.names.length && this.index.lasts[r + rows] === i) rows++;
    if (rows !== nTiles) throw new DeepLakeFormatError(`${this.describe()}: sample ${i} has ${rows} tile chunks, its tile shape implies ${nTiles}`);
    const out = new Uint8Array(sampleShape.reduce((a, b) => a * b, 1) * size);
    const strides = sampleShape.map((_, d) => sampleShape.slice(d + 1).reduce((a, b) => a * b, 1));
    for (let t = 0; t < nTiles; t++) {
      // C-order position of tile t in the grid
      const pos: number[] = [];
      let rem = t;
      for (let d = grid.length - 1; d >= 0; d--) {
        pos[d] = rem % grid[d]!;
        rem = Math.floor(rem / grid[d]!);
      }
      const storageKey = await this.dataset.chunkKey(this.key, this.index.names[r + t]!);
      const chunk = await this.dataset.loadChunk(storageKey, m.chunk_compression);
      const what = `${this.dataset.root}/${storageKey}`;
      const origin = pos.map((p, d) => p * tileShape[d]!);
      const extent = sampleShape.map((s, d) => Math.min(tileShape[d]!, s - origin[d]!));
      const range = chunkSampleRange(chunk, 0, what) ?? { start: 0, end: chunk.data.length };
      let bytes = chunk.data.subarray(range.start, range.end);
      if (m.sample_compression === 'lz4') bytes = lz4Decompress(bytes, what);
      else if (m.sample_compression) throw new DeepLakeError(`${this.describe()}: tiles with ${m.sample_compression} sample compression are not supported`);
      const tileElems = extent.reduce((a, b) => a * b, 1);
      if (bytes.length !== tileElems * size) throw new DeepLakeFormatError(`${what}: tile ${t} of sample ${i} has ${bytes.length} bytes, expected ${tileElems * size}`);
      // copy the tile's rows (last dimension contiguous) into place
      const last = extent.length - 1;
      const rowLen = extent[last]! * size;
      const nRows = tileElems / extent[last]!;
      for (let q = 0; q < nRows; q++) {
        let rem2 = q;
        let dst = origin[last]! * strides[last]!;
        for (let d = last - 1; d >= 0; d--) {
          const c = rem2 % extent[d]!;
          rem2 = Math.floor(rem2 / extent[d]!);
          dst += (origin[d]! + c) * strides[d]!;
        }
        out.set(bytes.subarray(q * rowLen, (q + 1) * rowLen), dst * size);
      }
    }
    return { shape: sampleShape, bytes: out, imageCompression: null };
  }

  /**
   * Sample `i` decoded: a string (text), a JSON value (json, list), the link URL, or
   * `{shape, data}` with a typed array for numeric tensors. Encoded images are returned as
   * `{shape, data: bytes, compression}`; decode them with sharp.
   */
  async value(i: number): Promise<string | unknown | { shape: number[]; data: NumericArray; compression?: string }> {
    const raw = await this.raw(i);
    const m = this.meta;
    const what = `${this.describe()} sample ${i}`;
    if (m.is_link || m.htype === 'text') return decoder.decode(raw.bytes);
    if (m.htype === 'json' || m.htype === 'list' || m.htype === 'tag') return raw.bytes.length ? parseDeepLakeJson(decoder.decode(raw.bytes), what) : null;
    if (raw.imageCompression) return { shape: raw.shape, data: raw.bytes, compression: raw.imageCompression };
    return { shape: raw.shape, data: toTypedArray(raw.bytes, this.dtype!, what) };
  }

  /** A text sample (text htype or link), '' when empty. */
  async text(i: number): Promise<string> {
    const raw = await this.raw(i);
    return decoder.decode(raw.bytes);
  }
}

export function itemSize(dtype: string): number {
  return ({ bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8 } as Record<string, number>)[dtype] ?? 1;
}

/**
 * Reads a link target: `s3://` through the S3 storage back end (credentials from the
 * environment), `http(s)://` with fetch (retried), anything else as a local path
 * (`file://` allowed).
 */
export async function defaultLinkFetcher(url: string): Promise<Uint8Array> {
  const { fetchUrl } = await import('../storage/index.js');
  return fetchUrl(url);
}
