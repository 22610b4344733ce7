/**
 * Storage back ends behind one interface ({@link Storage}, types.ts): a local directory,
 * `s3://bucket/prefix` (s3.ts) and `hub://org/dataset` (hub.ts: S3 behind the Activeloop API).
 * `openStorage(url)` picks one from the URL. Any reader of keyed objects (Deep Lake,
 * WebDataset shards) can take a `Storage`; see README "Storage".
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LocalStorage } from './local.js';
import { redact, withRetry } from './retry.js';
import { StorageError, type Storage } from './types.js';

export { LocalStorage } from './local.js';
export { redact, withRetry, type RetryOptions } from './retry.js';
export { StorageError, StorageNotFoundError, joinKey, type ByteRange, type Storage } from './types.js';

/** Options of {@link openStorage}. */
export interface OpenStorageOptions {
  /** Activeloop token for `hub://` (else `ACTIVELOOP_TOKEN`, else the public token). Never logged. */
  token?: string;
  /** S3 endpoint for plain `s3://` (else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`). */
  s3Endpoint?: string;
  /** hub://: accept a dataset's licence agreement when the API asks (`--deeplake_agree`). */
  acceptAgreements?: boolean;
  /** Where retry notices go (redacted). Default console.warn; null silences. */
  log?: ((line: string) => void) | null;
}

/** The storage for a dataset location: a local path, `file://`, `s3://bucket/prefix` or `hub://org/ds`. */
export async function openStorage(url: string, options: OpenStorageOptions = {}): Promise<Storage> {
  if (url.startsWith('s3://')) {
    const { S3Storage } = await import('./s3.js');
    return S3Storage.fromUrl(url, { endpoint: options.s3Endpoint, log: options.log });
  }
  if (url.startsWith('hub://')) {
    const { openHubStorage } = await import('./hub.js');
    return openHubStorage(url, { token: options.token, log: options.log, s3Endpoint: options.s3Endpoint, acceptAgreements: options.acceptAgreements });
  }
  if (/^(gcs|gs|az|azure):\/\//.test(url)) throw new StorageError(`${url}: only local paths, s3:// and hub:// are supported`, '');
  if (/^https?:\/\//.test(url)) throw new StorageError(`${url}: a dataset over plain http(s) is not supported (use s3:// or hub://)`, '');
  return new LocalStorage(url.startsWith('file://') ? fileURLToPath(url) : url);
}

/** Reads one object by URL: a local path/`file://`, `http(s)://` (fetch, retried) or `s3://bucket/key`. */
export async function fetchUrl(url: string, options: { log?: ((line: string) => void) | null; s3Endpoint?: string } = {}): Promise<Uint8Array> {
  if (url.startsWith('s3://')) {
    const { S3Storage } = await import('./s3.js');
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
    if (!m) throw new StorageError(`${url}: expected s3://bucket/key`, url);
    const s3 = S3Storage.fromUrl(`s3://${m[1]}`, { endpoint: options.s3Endpoint, log: options.log });
    return s3.get(m[2]!);
  }
  if (/^https?:\/\//.test(url)) {
    const shown = redact(url);
    return withRetry(
      async () => {
        const res = await fetch(url);
        if (!res.ok) {
          const err = new StorageError(`GET ${shown}: HTTP ${res.status} ${res.statusText}`, url);
          (err as StorageError & { status?: number }).status = res.status;
          throw err;
        }
        return new Uint8Array(await res.arrayBuffer());
      },
      { retryable: (err) => !(err instanceof StorageError) || ((err as { status?: number }).status ?? 500) >= 500 || (err as { status?: number }).status === 429 },
    );
  }
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (err) {
    throw new StorageError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, url, { cause: err });
  }
}
