/**
 * Writes Deep Lake v3 datasets in deeplake 3.9.15's layout (the files and metas of
 * tests/fixtures/deeplake, hidden `_<t>_id`/`_<t>_shape`/`_<t>_info` tensors included), so
 * `lightclip deeplake convert` can turn an image/caption folder into a dataset that deeplake
 * and lightclip both read. Also builds test fixtures the real ones lack: many chunks, lz4
 * chunk or sample compression, tiled samples, links, and version control (commits, branches,
 * edits copied into `versions/<commit>/` and listed in `chunk_set`).
 *
 * Everything is kept in memory until a commit or `close()`: meant for conversions of
 * folders and fixtures, not for appending to datasets of millions of samples.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { serializeChunk, serializeChunkIndex, serializeTileIndex } from './format.js';
import { lz4Compress } from './lz4.js';
import { commitPrefix, DeepLakeError } from './dataset.js';
import { DEFAULT_MAX_CHUNK_SIZE, DTYPES, FIRST_COMMIT_ID, WRITER_VERSION, type CommitInfo, type TensorMeta } from './meta.js';

export interface TensorSpec {
  name: string;
  htype: 'image' | 'text' | 'json' | 'list' | 'class_label' | 'generic';
  /** Numeric dtype (generic: default float32; image: uint8; class_label: uint32). */
  dtype?: string;
  sampleCompression?: 'jpeg' | 'png' | 'lz4' | null;
  chunkCompression?: 'lz4' | null;
  /** Bytes per chunk (default 16 MB, as deeplake). */
  maxChunkSize?: number;
  /** Raw samples larger than this are tiled (default maxChunkSize / 2). */
  tilingThreshold?: number;
  /** `link[image]`: samples are URLs/paths, the meta's compression describes the target. */
  isLink?: boolean;
  classNames?: string[];
}

/** A raw numeric sample. */
export interface ArraySample {
  shape: number[];
  data: ArrayLike<number> | ArrayLike<bigint>;
}

export type SampleInput = string | Uint8Array | ArraySample | number | number[] | unknown | null | undefined;

interface Stored {
  bytes: Uint8Array;
  shape: number[];
}

interface ChunkRow {
  id: bigint;
  samples: Stored[];
  /** The commit whose files hold this version of the chunk. */
  commit: string;
}

interface TensorState {
  spec: TensorSpec;
  key: string;
  hidden: boolean;
  htype: string;
  dtype: string | null;
  rows: ChunkRow[];
  /** Last global index per row. */
  lasts: number[];
  tiles: Map<number, { sampleShape: number[]; tileShape: number[] }>;
  length: number;
  minShape: number[] | null;
  maxShape: number[] | null;
  /** Links of the visible tensor (meta `links`). */
  links: Record<string, { extend: string; update?: string; flatten_sequence: boolean }>;
}

interface Head {
  commit: string;
  branch: string;
  tensors: Map<string, TensorState>;
}

const newId = (): bigint => randomBytes(8).readBigUInt64LE(0) | 1n;
const newCommitId = (): string => randomBytes(20).toString('hex');

/** JSON as deeplake writes metas: sorted keys, 4-space indent. */
function metaJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x && typeof x === 'object' && !(x instanceof Uint8Array) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sort(v), null, 4);
}

function cloneState(t: TensorState): TensorState {
  return { ...t, rows: [...t.rows], lasts: [...t.lasts], tiles: new Map(t.tiles), minShape: t.minShape && [...t.minShape], maxShape: t.maxShape && [...t.maxShape], links: { ...t.links } };
}

export class DeepLakeWriter {
  private head: Head;
  private readonly commits: Record<string, CommitInfo> = {};
  private readonly branches: Record<string, string> = {};
  /** Uncommitted heads of other branches (written at close). */
  private readonly otherHeads = new Map<string, Head>();
  private readonly visible: string[] = [];
  private committedFirst = false;

  private constructor(readonly dir: string, specs: TensorSpec[]) {
    this.head = { commit: FIRST_COMMIT_ID, branch: 'main', tensors: new Map() };
    this.commits[FIRST_COMMIT_ID] = { branch: 'main', parent: null, children: [], commit_message: null, commit_time: null, commit_user_name: null, is_checkpoint: false, total_samples_processed: 0 };
    this.branches.main = FIRST_COMMIT_ID;
    for (const s of specs) this.addTensor(s);
  }

  /** A new dataset in `dir` (which must not hold one already). */
  static async create(dir: string, tensors: TensorSpec[]): Promise<DeepLakeWriter> {
    if (await fs.stat(path.join(dir, 'dataset_meta.json')).then(() => true, () => false)) {
      throw new DeepLakeError(`${dir}: already holds a Deep Lake dataset (dataset_meta.json); choose an empty --out`);
    }
    await fs.mkdir(dir, { recursive: true });
    return new DeepLakeWriter(path.resolve(dir), tensors);
  }

  get commitId(): string {
    return this.head.commit;
  }

  private addTensor(spec: TensorSpec): void {
    if (this.head.tensors.has(spec.name)) throw new Error(`tensor ${spec.name} defined twice`);
    const mk = (name: string, htype: string, dtype: string | null, hidden: boolean, s: Partial<TensorSpec>): TensorState => ({
      spec: { name, htype: htype as TensorSpec['htype'], ...s },
      key: name, hidden, htype, dtype, rows: [], lasts: [], tiles: new Map(), length: 0, minShape: null, maxShape: null, links: {},
    });
    const dtype = spec.htype === 'text' || spec.htype === 'json' || spec.htype === 'list' || spec.isLink ? null
      : spec.htype === 'image' ? 'uint8' : spec.htype === 'class_label' ? 'uint32' : (spec.dtype ?? 'float32');
    if (dtype && !DTYPES[dtype]) throw new Error(`tensor ${spec.name}: unsupported dtype ${dtype}`);
    const t = mk(spec.name, spec.htype, dtype, false, spec);
    this.head.tensors.set(spec.name, t);
    this.visible.push(spec.name);
    const n = spec.name;
    const hiddenOnes: TensorState[] = [];
    if (spec.htype === 'image' && !spec.isLink) {
      hiddenOnes.push(mk(`_${n}_info`, 'json', null, true, { maxChunkSize: 4_000_000 }));
      t.links[`_${n}_info`] = { extend: 'extend_info', flatten_sequence: true, update: 'update_info' };
    }
    if (!['text', 'json', 'list'].includes(spec.htype) && !spec.isLink) {
      hiddenOnes.push(mk(`_${n}_shape`, 'generic', 'int64', true, { maxChunkSize: 4_000_000 }));
      t.links[`_${n}_shape`] = { extend: 'extend_shape', flatten_sequence: true, update: 'update_shape' };
    }
    hiddenOnes.push(mk(`_${n}_id`, 'generic', 'uint64', true, {}));
    t.links[`_${n}_id`] = { extend: 'extend_id', flatten_sequence: false };
    for (const h of hiddenOnes) this.head.tensors.set(h.key, h);
  }

  private tensor(name: string): TensorState {
    const t = this.head.tensors.get(name);
    if (!t || t.hidden) throw new Error(`${this.dir}: no tensor ${JSON.stringify(name)} (tensors: ${this.visible.join(', ')})`);
    return t;
  }

  /** Appends one sample to every visible tensor (missing keys: empty samples). */
  async append(row: Record<string, SampleInput>): Promise<void> {
    for (const k of Object.keys(row)) this.tensor(k);
    for (const name of this.visible) {
      const t = this.tensor(name);
      const stored = await this.encode(t, row[name]);
      this.push(t, stored);
      await this.pushHidden(t, stored, row[name]);
    }
  }

  /** Replaces sample `index` of `tensor` in the current head (copy-on-write of its chunk). */
  async update(tensor: string, index: number, value: SampleInput): Promise<void> {
    const t = this.tensor(tensor);
    if (t.tiles.has(index)) throw new Error('updating tiled samples is not supported by the writer');
    const stored = await this.encode(t, value);
    this.replace(t, index, stored);
    const shapeT = this.head.tensors.get(`_${tensor}_shape`);
    if (shapeT) this.replace(shapeT, index, this.rawArray(shapeT, { shape: [stored.shape.length], data: stored.shape }));
  }

  private replace(t: TensorState, index: number, stored: Stored): void {
    if (index < 0 || index >= t.length) throw new Error(`${t.key}: sample ${index} out of range`);
    const r = t.lasts.findIndex((l) => l >= index);
    const first = r === 0 ? 0 : t.lasts[r - 1]! + 1;
    const old = t.rows[r]!;
    const samples = [...old.samples];
    samples[index - first] = stored;
    t.rows[r] = { id: old.id, samples, commit: this.head.commit };
    this.widen(t, stored.shape);
  }

  private widen(t: TensorState, shape: number[]): void {
    t.minShape = t.minShape ? t.minShape.map((v, d) => Math.min(v, shape[d] ?? v)) : [...shape];
    t.maxShape = t.maxShape ? t.maxShape.map((v, d) => Math.max(v, shape[d] ?? v)) : [...shape];
  }

  private rawArray(t: TensorState, a: ArraySample): Stored {
    const dtype = t.dtype!;
    const size = DTYPES[dtype]!.size;
    const n = a.shape.reduce((x, y) => x * y, 1);
    if (a.data.length !== n) throw new Error(`${t.key}: ${a.data.length} values for shape [${a.shape}]`);
    const out = new Uint8Array(n * size);
    const dv = new DataView(out.buffer);
    for (let k = 0; k < n; k++) {
      const v = a.data[k]!;
      switch (dtype) {
        case 'bool': case 'uint8': dv.setUint8(k, Number(v)); break;
        case 'int8': dv.setInt8(k, Number(v)); break;
        case 'uint16': dv.setUint16(2 * k, Number(v), true); break;
        case 'int16': dv.setInt16(2 * k, Number(v), true); break;
        case 'uint32': dv.setUint32(4 * k, Number(v), true); break;
        case 'int32': dv.setInt32(4 * k, Number(v), true); break;
        case 'uint64': dv.setBigUint64(8 * k, BigInt(v), true); break;
        case 'int64': dv.setBigInt64(8 * k, BigInt(v), true); break;
        case 'float32': dv.setFloat32(4 * k, Number(v), true); break;
        case 'float64': dv.setFloat64(8 * k, Number(v), true); break;
        default: throw new Error(`${t.key}: the writer cannot write ${dtype}`);
      }
    }
    return { bytes: out, shape: [...a.shape] };
  }

  private async encode(t: TensorState, v: SampleInput): Promise<Stored> {
    const s = t.spec;
    const enc = new TextEncoder();
    if (s.isLink || s.htype === 'text') return { bytes: enc.encode(v == null ? '' : String(v)), shape: [1] };
    if (s.htype === 'json' || s.htype === 'list') {
      if (v == null) return { bytes: new Uint8Array(0), shape: s.htype === 'list' ? [0] : [1] };
      return { bytes: enc.encode(JSON.stringify(v)), shape: s.htype === 'list' ? [(v as unknown[]).length] : [1] };
    }
    if (s.htype === 'class_label') {
      const names = s.classNames ?? [];
      const list = v == null ? [] : Array.isArray(v) ? v : [v];
      const ids = list.map((x) => {
        if (typeof x === 'number') return x;
        const i = names.indexOf(String(x));
        if (i < 0) throw new Error(`${t.key}: unknown class ${JSON.stringify(x)} (class_names: ${names.join(', ')})`);
        return i;
      });
      return this.compressRaw(t, this.rawArray(t, { shape: [ids.length], data: ids }));
    }
    if (s.htype === 'image') {
      const comp = s.sampleCompression ?? null;
      if (v == null) return { bytes: new Uint8Array(0), shape: [0, 0, 3] };
      if (v instanceof Uint8Array) {
        const meta = await sharp(v).metadata();
        const shape = [meta.height!, meta.width!, meta.channels!];
        if ((comp === 'jpeg' && meta.format === 'jpeg') || (comp === 'png' && meta.format === 'png')) return { bytes: v, shape };
        const img = sharp(v);
        if (comp === 'jpeg') return { bytes: new Uint8Array(await img.jpeg({ quality: 90 }).toBuffer()), shape };
        if (comp === 'png') return { bytes: new Uint8Array(await img.png().toBuffer()), shape };
        const raw = await img.raw().toBuffer();
        return this.compressRaw(t, { bytes: new Uint8Array(raw), shape });
      }
      const a = v as ArraySample;
      if (comp === 'jpeg' || comp === 'png') {
        const [h, w, c] = a.shape as [number, number, number];
        const img = sharp(Buffer.from(Uint8Array.from(a.data as ArrayLike<number>)), { raw: { width: w, height: h, channels: c as 3 } });
        return { bytes: new Uint8Array(await (comp === 'jpeg' ? img.jpeg({ quality: 90 }) : img.png()).toBuffer()), shape: [...a.shape] };
      }
      return this.compressRaw(t, this.rawArray(t, a));
    }
    // generic numbers
    if (v == null) return { bytes: new Uint8Array(0), shape: [0] };
    const a: ArraySample = typeof v === 'number' || typeof v === 'bigint' ? { shape: [1], data: [v as number] } : Array.isArray(v) ? { shape: [v.length], data: v as number[] } : (v as ArraySample);
    return this.compressRaw(t, this.rawArray(t, a));
  }

  private compressRaw(t: TensorState, s: Stored): Stored {
    return t.spec.sampleCompression === 'lz4' ? { bytes: lz4Compress(s.bytes), shape: s.shape } : s;
  }

  private async pushHidden(t: TensorState, stored: Stored, input: SampleInput): Promise<void> {
    const n = t.key;
    const id = this.head.tensors.get(`_${n}_id`)!;
    this.push(id, this.rawArray(id, { shape: [1], data: [newId() >> 1n] }));
    const shapeT = this.head.tensors.get(`_${n}_shape`);
    if (shapeT) this.push(shapeT, this.rawArray(shapeT, { shape: [stored.shape.length], data: stored.shape }));
    const info = this.head.tensors.get(`_${n}_info`);
    if (info) {
      const format = t.spec.sampleCompression ?? null;
      const body = input instanceof Uint8Array || stored.bytes.length === 0 ? { exif: {}, shape: stored.shape, format, filename: null, modified: false } : {};
      this.push(info, { bytes: new TextEncoder().encode(JSON.stringify(body)), shape: [1] });
    }
  }

  /** Appends a stored sample, starting a new chunk when the current one is full, tiling big raw samples. */
  private push(t: TensorState, s: Stored): void {
    const max = t.spec.maxChunkSize ?? DEFAULT_MAX_CHUNK_SIZE;
    const index = t.length;
    const tileAt = t.spec.tilingThreshold ?? max / 2;
    const raw = !t.spec.sampleCompression && t.dtype !== null && t.spec.htype !== 'class_label';
    if (raw && s.bytes.length > tileAt && s.shape.length > 0) {
      const size = DTYPES[t.dtype!]!.size;
      const tileShape = [...s.shape];
      const bytesOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1) * size;
      while (bytesOf(tileShape) > tileAt) {
        const d = tileShape.indexOf(Math.max(...tileShape));
        tileShape[d] = Math.ceil(tileShape[d]! / 2);
      }
      const grid = s.shape.map((v, d) => Math.ceil(v / tileShape[d]!));
      const nTiles = grid.reduce((a, b) => a * b, 1);
      const strides = s.shape.map((_, d) => s.shape.slice(d + 1).reduce((a, b) => a * b, 1));
      for (let k = 0; k < nTiles; k++) {
        const pos: number[] = [];
        let rem = k;
        for (let d = grid.length - 1; d >= 0; d--) {
          pos[d] = rem % grid[d]!;
          rem = Math.floor(rem / grid[d]!);
        }
        const origin = pos.map((p, d) => p * tileShape[d]!);
        const extent = s.shape.map((v, d) => Math.min(tileShape[d]!, v - origin[d]!));
        const last = extent.length - 1;
        const rowLen = extent[last]! * size;
        const nRows = extent.reduce((a, b) => a * b, 1) / extent[last]!;
        const out = new Uint8Array(nRows * rowLen);
        for (let q = 0; q < nRows; q++) {
          let rem2 = q;
          let src = origin[last]! * strides[last]!;
          for (let d = last - 1; d >= 0; d--) {
            src += (origin[d]! + (rem2 % extent[d]!)) * strides[d]!;
            rem2 = Math.floor(rem2 / extent[d]!);
          }
          out.set(s.bytes.subarray(src * size, src * size + rowLen), q * rowLen);
        }
        t.rows.push({ id: newId(), samples: [{ bytes: out, shape: extent }], commit: this.head.commit });
        t.lasts.push(index);
      }
      t.tiles.set(index, { sampleShape: [...s.shape], tileShape });
    } else {
      const cur = t.rows[t.rows.length - 1];
      const used = cur ? cur.samples.reduce((a, x) => a + x.bytes.length, 0) : 0;
      const isTileRow = cur !== undefined && t.tiles.has(t.lasts[t.lasts.length - 1]!);
      if (!cur || isTileRow || cur.commit !== this.head.commit || (cur.samples.length > 0 && used + s.bytes.length > max)) {
        t.rows.push({ id: newId(), samples: [s], commit: this.head.commit });
        t.lasts.push(index);
      } else {
        cur.samples.push(s);
        t.lasts[t.lasts.length - 1] = index;
      }
    }
    t.length++;
    this.widen(t, s.shape);
  }

  /** Commits the head (writing its files); a new head on the same branch follows. Returns the commit id. */
  async commit(message: string): Promise<string> {
    const done = this.head.commit;
    Object.assign(this.commits[done]!, { commit_message: message, commit_time: Date.now() / 1000, commit_user_name: 'public' });
    if (done === FIRST_COMMIT_ID) this.committedFirst = true;
    await this.writeCommit(this.head, true);
    const next = newCommitId();
    this.commits[next] = { branch: this.head.branch, parent: done, children: [], commit_message: null, commit_time: null, commit_user_name: null, is_checkpoint: false, total_samples_processed: 0 };
    this.commits[done]!.children.push(next);
    this.branches[this.head.branch] = next;
    const tensors = new Map([...this.head.tensors].map(([k, t]) => [k, cloneState(t)]));
    this.head = { commit: next, branch: this.head.branch, tensors };
    return done;
  }

  /**
   * Creates branch `name` from the last commit of the current branch (commit first) and
   * switches to it. The previous branch keeps its own (empty) head.
   */
  async checkoutNewBranch(name: string): Promise<void> {
    if (this.branches[name]) throw new Error(`branch ${name} exists`);
    const parent = this.commits[this.head.commit]!.parent;
    if (!parent) throw new Error('commit before creating a branch');
    const id = newCommitId();
    this.commits[id] = { branch: name, parent, children: [], commit_message: null, commit_time: null, commit_user_name: null, is_checkpoint: false, total_samples_processed: 0 };
    this.commits[parent]!.children.push(id);
    this.branches[name] = id;
    this.otherHeads.set(this.head.branch, this.head);
    const tensors = new Map([...this.head.tensors].map(([k, t]) => [k, cloneState(t)]));
    this.head = { commit: id, branch: name, tensors };
  }

  /** Switches to an existing branch's head. */
  checkout(branch: string): void {
    const h = this.otherHeads.get(branch);
    if (!h) throw new Error(`no uncommitted head for branch ${branch}`);
    this.otherHeads.delete(branch);
    this.otherHeads.set(this.head.branch, this.head);
    this.head = h;
  }

  /** Writes the heads and version_control_info.json. */
  async close(): Promise<void> {
    for (const h of [this.head, ...this.otherHeads.values()]) await this.writeCommit(h, false);
    await this.writeFile('version_control_info.json', JSON.stringify({ commits: this.commits, branches: this.branches }));
  }

  private async writeFile(key: string, data: string | Uint8Array): Promise<void> {
    const file = path.join(this.dir, key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, data);
  }

  private async writeCommit(h: Head, committed: boolean): Promise<void> {
    const c = h.commit;
    const P = commitPrefix(c);
    const all = [...h.tensors.values()];
    const order: string[] = [];
    for (const v of this.visible) {
      order.push(v);
      for (const suffix of ['info', 'shape', 'id']) if (h.tensors.has(`_${v}_${suffix}`)) order.push(`_${v}_${suffix}`);
    }
    const dsMeta = {
      allow_delete: true,
      default_index: [{ start: null, step: null, stop: null }],
      groups: [],
      hidden_tensors: order.filter((k) => h.tensors.get(k)!.hidden),
      tensor_names: Object.fromEntries(all.map((t) => [t.key, t.key])),
      tensors: order,
      version: WRITER_VERSION,
    };
    await this.writeFile(`${P}dataset_meta.json`, metaJson(dsMeta));
    if (committed || c !== FIRST_COMMIT_ID) {
      const info = this.commits[c]!;
      await this.writeFile(`${P}commit_info.json`, JSON.stringify({ branch: info.branch, children: info.children, parent: info.parent, commit_message: info.commit_message, commit_time: info.commit_time, commit_user_name: info.commit_user_name, is_checkpoint: false, total_samples_processed: 0 }));
    }
    if (c !== FIRST_COMMIT_ID) await this.writeFile(`versions/${c}/dataset_info.json`, '{}');
    for (const t of all) {
      const s = t.spec;
      const isImage = s.htype === 'image';
      const meta: TensorMeta = {
        chunk_compression: s.chunkCompression ?? null,
        dtype: t.dtype ?? (s.htype === 'text' || s.isLink ? 'str' : s.htype === 'json' || s.htype === 'list' ? (s.htype === 'list' ? 'List' : 'Any') : null),
        hidden: t.hidden,
        htype: s.htype,
        is_link: s.isLink ?? false,
        is_sequence: false,
        length: t.length,
        links: t.links,
        max_chunk_size: s.maxChunkSize ?? null,
        max_shape: t.maxShape ?? [],
        min_shape: t.minShape ?? [],
        name: t.key,
        sample_compression: s.sampleCompression ?? null,
        tiling_threshold: s.tilingThreshold ?? null,
        // deeplake leaves typestr null when the dtype was given explicitly (its own hidden _shape tensors)
        typestr: t.dtype && !(t.hidden && t.key.endsWith('_shape')) ? typestrOf(t.dtype) : null,
        verify: !(s.isLink ?? false),
        version: WRITER_VERSION,
      };
      if (isImage && !s.isLink) Object.assign(meta, { _info: ['intrinsics'], intrinsics: null });
      if (s.htype === 'class_label') Object.assign(meta, { _info: ['class_names'], class_names: s.classNames ?? [] });
      const K = `${P}${t.key}/`;
      await this.writeFile(`${K}tensor_meta.json`, metaJson(meta));
      if (isImage && !s.isLink) await this.writeFile(`${K}tensor_info.json`, metaJson({ intrinsics: null }));
      if (s.htype === 'class_label') await this.writeFile(`${K}tensor_info.json`, metaJson({ class_names: s.classNames ?? [] }));
      await this.writeFile(`${K}chunks_index/unsharded`, t.rows.length ? serializeChunkIndex(WRITER_VERSION, t.rows.map((r) => r.id), t.lasts) : new Uint8Array([WRITER_VERSION.length, ...Buffer.from(WRITER_VERSION)]));
      await this.writeFile(`${K}tiles_index/unsharded`, serializeTileIndex(WRITER_VERSION, t.tiles));
      const mine = t.rows.filter((r) => r.commit === c);
      for (const r of mine) await this.writeFile(`${K}chunks/${r.id.toString(16)}`, this.serializeRow(t, r));
      if (c !== FIRST_COMMIT_ID) await this.writeFile(`versions/${c}/${t.key}/chunk_set`, mine.map((r) => r.id.toString(16)).join(','));
      else await this.writeFile(`${t.key}/commit_diff`, commitDiff(isImage && !s.isLink, t.length));
    }
  }

  private serializeRow(t: TensorState, r: ChunkRow): Uint8Array {
    const shapeRows: number[][] = [];
    const byteRows: number[][] = [];
    let offset = 0;
    r.samples.forEach((s, local) => {
      const prev = shapeRows[shapeRows.length - 1];
      if (prev && prev.length === s.shape.length + 1 && s.shape.every((v, d) => prev[d] === v)) prev[prev.length - 1] = local;
      else shapeRows.push([...s.shape, local]);
      const pb = byteRows[byteRows.length - 1];
      if (pb && pb[0] === s.bytes.length) pb[2] = local;
      else byteRows.push([s.bytes.length, offset, local]);
      offset += s.bytes.length;
    });
    // shape rows must all have the same width: mixed ndims are not written by deeplake either
    const width = shapeRows[0]?.length ?? 0;
    if (shapeRows.some((row) => row.length !== width)) throw new Error(`${t.key}: samples of different ranks in one chunk`);
    const data = new Uint8Array(offset);
    let o = 0;
    for (const s of r.samples) (data.set(s.bytes, o), (o += s.bytes.length));
    return serializeChunk(WRITER_VERSION, shapeRows, byteRows, t.spec.chunkCompression === 'lz4' ? lz4Compress(data) : data);
  }
}

function typestrOf(dtype: string): string {
  const code = ({ bool: 'b1', uint8: 'u1', int8: 'i1', uint16: 'u2', int16: 'i2', uint32: 'u4', int32: 'i4', uint64: 'u8', int64: 'i8', float16: 'f2', float32: 'f4', float64: 'f8' } as Record<string, string>)[dtype]!;
  return `${code.endsWith('1') ? '|' : '<'}${code}`;
}

/** commit_diff of a tensor created in the root commit with `n` samples (deeplake's CommitDiff.tobytes). */
function commitDiff(infoUpdated: boolean, n: number): Uint8Array {
  const out = new Uint8Array(36);
  const dv = new DataView(out.buffer);
  out[0] = 1;
  out[1] = infoUpdated ? 1 : 0;
  dv.setBigUint64(11, BigInt(n), false);
  return out;
}
