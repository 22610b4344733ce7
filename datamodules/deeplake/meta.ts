/**
 * Deep Lake v3 metadata: dataset_meta.json, tensor_meta.json, version_control_info.json
 * (deeplake 3.9.x core/meta/*, util/version_control.py) and the dtypes samples decode to.
 */

/** The root commit's id: its files live at the dataset root, every other commit's under `versions/<id>/`. */
export const FIRST_COMMIT_ID = 'firstdbf9474d461a19e9333c2fd19b46115348f';
/** deeplake's default `max_chunk_size` (null in the meta) and tiling threshold. */
export const DEFAULT_MAX_CHUNK_SIZE = 16_000_000;
/** The version string lightclip's writer puts in metas and encoders (the fork's pinned deeplake). */
export const WRITER_VERSION = '3.9.15';

export interface DatasetMeta {
  version: string;
  tensors: string[];
  groups: string[];
  tensor_names: Record<string, string>;
  hidden_tensors: string[];
  default_index?: unknown;
  allow_delete?: boolean;
}

export interface TensorMeta {
  version: string;
  name?: string;
  htype: string;
  dtype: string | null;
  typestr: string | null;
  min_shape: number[];
  max_shape: number[];
  length: number;
  sample_compression: string | null;
  chunk_compression: string | null;
  max_chunk_size: number | null;
  tiling_threshold: number | null;
  hidden: boolean;
  links: Record<string, { extend: string; update?: string; flatten_sequence: boolean }>;
  is_sequence: boolean;
  is_link: boolean;
  verify: boolean;
  [extra: string]: unknown;
}

export interface CommitInfo {
  branch: string;
  parent: string | null;
  children: string[];
  commit_message: string | null;
  commit_time: number | null;
  commit_user_name: string | null;
  is_checkpoint?: boolean;
  total_samples_processed?: number;
}

export interface VersionControlInfo {
  commits: Record<string, CommitInfo>;
  branches: Record<string, string>;
}

/** Numeric dtypes and how to read them. */
export const DTYPES: Record<string, { size: number; array: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'f16' | 'f32' | 'f64' | 'bool' }> = {
  bool: { size: 1, array: 'bool' },
  uint8: { size: 1, array: 'u8' },
  int8: { size: 1, array: 'i8' },
  uint16: { size: 2, array: 'u16' },
  int16: { size: 2, array: 'i16' },
  uint32: { size: 4, array: 'u32' },
  int32: { size: 4, array: 'i32' },
  uint64: { size: 8, array: 'u64' },
  int64: { size: 8, array: 'i64' },
  float16: { size: 2, array: 'f16' },
  float32: { size: 4, array: 'f32' },
  float64: { size: 8, array: 'f64' },
};

const TYPESTR: Record<string, string> = {
  b1: 'bool', u1: 'uint8', i1: 'int8', u2: 'uint16', i2: 'int16', u4: 'uint32', i4: 'int32',
  u8: 'uint64', i8: 'int64', f2: 'float16', f4: 'float32', f8: 'float64',
};

/** The numpy dtype name of a tensor: `typestr` ("<i8") when set, else `dtype` (typestr is null for explicit dtypes). */
export function numericDtype(meta: TensorMeta): string | null {
  if (meta.typestr) {
    if (meta.typestr[0] === '>') return null; // big-endian: never written by deeplake on x86/arm
    const name = TYPESTR[meta.typestr.slice(1)];
    if (name) return name;
  }
  return meta.dtype && DTYPES[meta.dtype] ? meta.dtype : null;
}

/** Htypes whose samples are variable-length bytes (never the fixed-size fast path). */
export const BYTE_HTYPES = new Set(['text', 'json', 'list', 'tag']);

/** Htypes the reader decodes; anything else is read as a generic numeric tensor if its dtype is numeric. */
export const KNOWN_HTYPES = new Set([
  'generic', 'image', 'image.rgb', 'image.gray', 'text', 'json', 'list', 'tag', 'class_label', 'bbox', 'bbox.3d',
  'binary_mask', 'segment_mask', 'keypoints_coco', 'point', 'embedding', 'intrinsics', 'polygon', 'audio', 'video',
]);

/** Sample and chunk compressions the reader supports. */
export const SAMPLE_COMPRESSIONS = new Set([null, 'jpeg', 'jpg', 'png', 'lz4']);
export const CHUNK_COMPRESSIONS = new Set([null, 'lz4']);

/** Fills defaults of metas written by older deeplake versions (core/fast_forwarding.py). */
export function normalizeTensorMeta(raw: Record<string, unknown>): TensorMeta {
  const m = raw as Partial<TensorMeta>;
  return {
    ...(raw as object),
    version: m.version ?? '0.0.0',
    htype: m.htype ?? 'generic',
    dtype: m.dtype ?? null,
    typestr: m.typestr ?? null,
    min_shape: m.min_shape ?? [],
    max_shape: m.max_shape ?? [],
    length: m.length ?? 0,
    sample_compression: m.sample_compression ?? null,
    chunk_compression: m.chunk_compression ?? null,
    max_chunk_size: m.max_chunk_size ?? null,
    tiling_threshold: m.tiling_threshold ?? null,
    hidden: m.hidden ?? false,
    links: m.links ?? {},
    is_sequence: m.is_sequence ?? false,
    is_link: m.is_link ?? false,
    verify: m.verify ?? false,
  };
}
