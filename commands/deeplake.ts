/**
 * `lightclip deeplake show|info|convert`: look inside a Deep Lake dataset the way the
 * DataModule reads it, and convert image/caption folders into one.
 *
 *   lightclip deeplake info --path DS
 *   lightclip deeplake show --path DS [--branch B | --commit C] [--tensors URL,TEXT,NSFW] [--query Q] [--limit N] --json
 *   lightclip deeplake convert --folder data/ --out ds/ [--image_compression jpeg|png] [--layout new|old]
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Min } from 'class-validator';
import sharp from 'sharp';
import { Describe, renderConfigHelp, resolveConfig } from '../core/config.js';
import { MisconfigurationError } from '../core/errors.js';
import { convertFolder } from '../datamodules/deeplake/convert.js';
import { DeepLakeDataset, DeepLakeError, type DeepLakeTensor } from '../datamodules/deeplake/dataset.js';
import { toNumbers, type NumericArray } from '../datamodules/deeplake/decode.js';
import { selectIndices } from '../datamodules/deeplake/query.js';
import { openStorage, StorageError } from '../datamodules/storage/index.js';

export const description = 'inspect (show, info) Deep Lake datasets and convert image/caption folders to them';

class OpenConfig {
  @Describe('dataset: local directory, s3://bucket/prefix or hub://org/dataset') @IsString() path = '';
  @Describe('Activeloop token for hub:// (else ACTIVELOOP_TOKEN)') @IsOptional() @IsString() token?: string;
  @Describe('branch (default main)') @IsOptional() @IsString() branch?: string;
  @Describe('commit id') @IsOptional() @IsString() commit?: string;
  @Describe('S3 endpoint for s3:// paths') @IsOptional() @IsString() s3_endpoint?: string;
  @Describe("hub://: accept the dataset's licence agreement if asked") @IsBoolean() deeplake_agree = false;
}

class ShowConfig extends OpenConfig {
  @Describe('comma-separated tensors (default: all visible)') @IsOptional() @IsString() tensors?: string;
  @Describe("TQL filter: SELECT * WHERE <col> == '<text>' [and <col> between a and b]") @IsOptional() @IsString() query?: string;
  @Describe('first sample index') @IsInt() @Min(0) start = 0;
  @Describe('samples to print') @IsInt() @Min(0) limit = 10;
  @Describe('one JSON object per line (the only output format; accepted for clarity)') @IsBoolean() json = true;
}

class InfoConfig extends OpenConfig {
  @Describe('print one JSON object instead of text') @IsBoolean() json = false;
}

class ConvertConfig {
  @Describe('folder of images with same-stem .txt captions') @IsString() folder = '';
  @Describe('output dataset directory (must not hold a dataset)') @IsString() out = '';
  @Describe('image sample compression') @IsIn(['jpeg', 'png']) image_compression: 'jpeg' | 'png' = 'jpeg';
  @Describe('new: URL/TEXT tensors; old: image/caption') @IsIn(['new', 'old']) layout: 'new' | 'old' = 'new';
  @Describe('chunk size in MB (deeplake default 16)') @IsInt() @Min(1) max_chunk_mb = 16;
}

async function openFrom(c: OpenConfig): Promise<DeepLakeDataset> {
  if (!c.path) throw new MisconfigurationError('`--path` is required: a Deep Lake dataset (local directory, s3:// or hub://).');
  const storage = await openStorage(c.path, { token: c.token, s3Endpoint: c.s3_endpoint, acceptAgreements: c.deeplake_agree, log: (l) => console.error(l) });
  return DeepLakeDataset.open(storage, { branch: c.branch, commit: c.commit });
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** One sample of one tensor as JSON: strings, numbers, and for images shape + sha256 of the stored bytes. */
async function sampleJson(t: DeepLakeTensor, i: number): Promise<unknown> {
  const m = t.meta;
  if (m.is_link) {
    const url = await t.text(i);
    if (!url) return { url, shape: [0, 0, 3] };
    try {
      const bytes = await t.dataset.fetchLink(url);
      const meta = await sharp(bytes).metadata();
      return { url, shape: [meta.height, meta.width, meta.channels], stored_sha256: sha256(bytes), nbytes: bytes.length };
    } catch (err) {
      return { url, error: (err as Error).message };
    }
  }
  if (m.htype === 'image') {
    const raw = await t.raw(i);
    const out: Record<string, unknown> = { shape: raw.shape, stored_sha256: sha256(raw.bytes), nbytes: raw.bytes.length, compression: raw.imageCompression };
    if (raw.imageCompression) {
      try {
        const { info } = await sharp(raw.bytes).raw().toBuffer({ resolveWithObject: true });
        out.decoded_shape = [info.height, info.width, info.channels];
      } catch (err) {
        out.error = `undecodable ${raw.imageCompression}: ${(err as Error).message}`;
      }
    } else out.decoded_shape = raw.shape;
    return out;
  }
  const v = await t.value(i);
  if (v && typeof v === 'object' && 'data' in (v as object) && 'shape' in (v as object)) {
    const a = v as { shape: number[]; data: NumericArray };
    const nums = toNumbers(a.data);
    if (m.htype === 'class_label') return { ids: nums, names: nums.map((k) => t.classNames[k] ?? null) };
    return a.shape.length === 1 && a.shape[0] === 1 ? nums[0] : { shape: a.shape, data: nums.length <= 64 ? nums : `${nums.length} values` };
  }
  return v;
}

export async function show(argv: readonly string[]): Promise<number> {
  const r = resolveConfig(ShowConfig, argv);
  if (r.help) return console.log(renderConfigHelp(ShowConfig, { usage: 'lightclip deeplake show --path DS [--tensors URL,TEXT] [--query Q] [--limit N] --json' })), 0;
  const c = r.config;
  const ds = await openFrom(c);
  const names = c.tensors ? c.tensors.split(',').map((s) => s.trim()).filter(Boolean) : [...ds.tensors.keys()];
  const tensors = names.map((n) => ds.tensor(n, { hidden: true }));
  const indices = c.query ? await selectIndices(ds, c.query, { log: null }) : null;
  const total = indices ? indices.length : ds.length;
  for (let k = c.start; k < Math.min(total, c.start + c.limit); k++) {
    const i = indices ? indices[k]! : k;
    const row: Record<string, unknown> = { index: i };
    for (const t of tensors) {
      try {
        row[t.name] = i < t.length ? await sampleJson(t, i) : null;
      } catch (err) {
        row[t.name] = { error: (err as Error).message };
      }
    }
    console.log(JSON.stringify(row));
  }
  return 0;
}

export async function info(argv: readonly string[]): Promise<number> {
  const r = resolveConfig(InfoConfig, argv);
  if (r.help) return console.log(renderConfigHelp(InfoConfig, { usage: 'lightclip deeplake info --path DS [--json]' })), 0;
  const c = r.config;
  const ds = await openFrom(c);
  const describeTensor = (t: DeepLakeTensor) => ({
    name: t.name,
    htype: t.htype,
    dtype: t.dtype ?? t.meta.dtype,
    sample_compression: t.meta.sample_compression,
    chunk_compression: t.meta.chunk_compression,
    length: t.length,
    chunks: t.numChunks,
    min_shape: t.meta.min_shape,
    max_shape: t.meta.max_shape,
    ...(t.classNames.length ? { class_names: t.classNames } : {}),
  });
  const commits = Object.entries(ds.versionInfo?.commits ?? {}).map(([id, ci]) => ({ id, branch: ci.branch, parent: ci.parent, message: ci.commit_message, time: ci.commit_time ? new Date(ci.commit_time * 1000).toISOString() : null, committed: ci.commit_time !== null }));
  const out = {
    path: ds.root,
    branch: ds.branch,
    commit: ds.commitId,
    length: ds.length,
    tensors: [...ds.tensors.values()].map(describeTensor),
    hidden_tensors: ds.hiddenNames,
    branches: ds.versionInfo?.branches ?? { main: ds.commitId },
    commits,
  };
  if (c.json) {
    console.log(JSON.stringify(out));
    return 0;
  }
  console.log(`${out.path}: ${out.length} samples (branch ${out.branch}, commit ${out.commit})`);
  for (const t of out.tensors) {
    const comp = t.sample_compression ? `, ${t.sample_compression}` : t.chunk_compression ? `, chunks ${t.chunk_compression}` : '';
    console.log(`  ${t.name}: ${t.htype} ${t.dtype ?? ''}${comp}, ${t.length} samples in ${t.chunks} chunks, shape [${t.min_shape}]..[${t.max_shape}]${t.class_names ? `, classes ${t.class_names.join(', ')}` : ''}`);
  }
  console.log(`  hidden: ${out.hidden_tensors.join(', ') || 'none'}`);
  console.log(`branches: ${Object.entries(out.branches).map(([b, h]) => `${b} -> ${h}`).join(', ')}`);
  for (const cm of commits) console.log(`  commit ${cm.id} (${cm.branch}${cm.parent ? `, parent ${cm.parent.slice(0, 12)}` : ''})${cm.committed ? `: ${cm.message ?? ''} ${cm.time}` : ': uncommitted head'}`);
  return 0;
}

export async function convert(argv: readonly string[]): Promise<number> {
  const r = resolveConfig(ConvertConfig, argv);
  if (r.help) return console.log(renderConfigHelp(ConvertConfig, { usage: 'lightclip deeplake convert --folder data/ --out ds/' })), 0;
  const c = r.config;
  if (!c.folder) throw new MisconfigurationError('`--folder` is required: a folder of images with same-stem .txt captions.');
  if (!c.out) throw new MisconfigurationError('`--out` is required: the directory to write the dataset to.');
  const report = await convertFolder({ folder: c.folder, out: c.out, imageCompression: c.image_compression, layout: c.layout, maxChunkSize: c.max_chunk_mb * 1e6 });
  return report.samples > 0 ? 0 : 1;
}

const USAGE = 'usage: lightclip deeplake <show|info|convert> [--help] [options]';

/** Dispatches the subcommand; errors of the data or flags are one line on stderr and exit code 2. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'show') return await show(rest);
    if (sub === 'info') return await info(rest);
    if (sub === 'convert') return await convert(rest);
    if (sub === undefined || sub === '--help' || sub === '-h') return console.log(`${description}\n${USAGE}`), sub === undefined ? 2 : 0;
    console.error(`lightclip deeplake: unknown subcommand ${JSON.stringify(sub)}. ${USAGE}`);
    return 2;
  } catch (err) {
    if (err instanceof MisconfigurationError || err instanceof DeepLakeError || err instanceof StorageError || (err as Error).name === 'DeepLakeFormatError') {
      console.error(`lightclip deeplake ${sub}: ${(err as Error).message}`);
      return 2;
    }
    throw err;
  }
}
