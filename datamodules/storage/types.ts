/**
 * One storage interface for datasets read by key: a local directory, an S3 prefix, or a
 * Deep Lake `hub://` dataset (S3 behind the Activeloop API). Keys are `/`-separated paths
 * relative to the storage root (`"URL/chunks/93bd64cda6064a2c"`), never starting with `/`.
 * Deep Lake and WebDataset readers take a `Storage` and know nothing of where bytes live.
 */

/** A half-open byte range `[start, end)` of an object. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface Storage {
  /** Where the data lives, for messages (`/data/ds`, `s3://bucket/prefix`, `hub://org/ds`); never holds a secret. */
  readonly root: string;
  /**
   * The whole object, or the bytes of `range` (clamped to the object's end). Throws
   * {@link StorageNotFoundError} when the key does not exist, {@link StorageError} for
   * everything else (after the back end's retries).
   */
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** Whether `key` is an object. */
  exists(key: string): Promise<boolean>;
  /** Keys under `prefix` (recursively), relative to the root, sorted. */
  list(prefix?: string): Promise<string[]>;
  /** Releases connections (optional). */
  close?(): Promise<void> | void;
}

/** A storage failure, naming the object (with any token redacted). */
export class StorageError extends Error {
  constructor(message: string, readonly key: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** The object does not exist. */
export class StorageNotFoundError extends StorageError {
  constructor(root: string, key: string) {
    super(`${joinKey(root, key)}: no such object`, key);
    this.name = 'StorageNotFoundError';
  }
}

/** `root` + `/` + `key` for messages. */
export function joinKey(root: string, key: string): string {
  return key ? `${root.replace(/\/+$/, '')}/${key}` : root;
}

/** Checks a key: relative, no `..` segments (a dataset must not read outside its root). */
export function checkKey(key: string): string {
  if (key.startsWith('/') || key.split('/').some((s) => s === '..')) throw new StorageError(`storage key ${JSON.stringify(key)} must be relative, without '..'`, key);
  return key;
}
