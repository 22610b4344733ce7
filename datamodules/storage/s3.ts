/**
 * `s3://bucket/prefix` as a {@link Storage} with @aws-sdk/client-s3: ranged GetObject,
 * HeadObject, ListObjectsV2. Endpoint: the option (`--s3_endpoint`, or the Activeloop
 * credentials' `endpoint_url`), else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; a custom
 * endpoint uses path-style addressing. Credentials: a provider (hub://) or the SDK's default
 * chain (environment, profile...). Region redirects are followed by the SDK.
 *
 * Failures are retried here (the SDK's own retries are off, so every attempt is visible):
 * throttling (503 SlowDown, 429), 5xx and dropped connections with backoff; access errors
 * (403, ExpiredToken, InvalidAccessKeyId) once after asking the provider for fresh
 * credentials. Messages name `s3://bucket/key`, never a secret.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { redact, withRetry } from './retry.js';
import { checkKey, joinKey, StorageError, StorageNotFoundError, type ByteRange, type Storage } from './types.js';

/** Temporary credentials (the Activeloop response's shape, camelCased). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Expiry time, ms since the epoch. */
  expiration?: number;
}

export interface S3StorageOptions {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  /**
   * Credentials (hub://). Called with `force` after an access error or when the current ones
   * expire within `refreshMarginMs`. Omitted: the SDK's default chain.
   */
  credentials?: (force: boolean) => Promise<S3Credentials>;
  /** Refresh credentials this long before `expiration`. Default 5 minutes. */
  refreshMarginMs?: number;
  /** Label for messages (default `s3://bucket/prefix`). */
  root?: string;
  log?: ((line: string) => void) | null;
}

/** What an SDK error says about its cause. */
function classify(err: unknown): { status: number | undefined; code: string } {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  return { status: e?.$metadata?.httpStatusCode, code: e?.Code ?? e?.name ?? e?.code ?? '' };
}

const ACCESS_CODES = new Set(['ExpiredToken', 'InvalidAccessKeyId', 'InvalidToken', 'TokenRefreshRequired', 'AccessDenied', 'SignatureDoesNotMatch']);

export class S3Storage implements Storage {
  readonly root: string;
  private client: S3Client | null = null;
  private readonly retired: S3Client[] = [];
  private generation = 0;
  private refreshing: Promise<S3Client> | null = null;
  private creds: S3Credentials | null = null;
  private readonly log: ((line: string) => void) | null;

  constructor(private readonly options: S3StorageOptions) {
    this.root = options.root ?? `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ''}`;
    this.log = options.log === undefined ? (line) => console.warn(line) : options.log;
  }

  /** `s3://bucket[/prefix]` with the endpoint from `endpoint`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`. */
  static fromUrl(url: string, o: { endpoint?: string; region?: string; log?: ((line: string) => void) | null } = {}): S3Storage {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!m || !m[1]) throw new StorageError(`${url}: expected s3://bucket[/prefix]`, '');
    const endpoint = o.endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
    return new S3Storage({ bucket: m[1], prefix: m[2]!.replace(/\/+$/, ''), endpoint, region: o.region, log: o.log });
  }

  private objectKey(key: string): string {
    checkKey(key);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  /**
   * The current client, rebuilt when its credentials expire within the margin. One rebuild at
   * a time: concurrent requests share it, and old clients are kept (not destroyed) until
   * `close()`, because requests may still be running on them.
   */
  private async getClient(): Promise<S3Client> {
    if (this.refreshing) return this.refreshing;
    const margin = this.options.refreshMarginMs ?? 5 * 60_000;
    const stale = this.creds?.expiration !== undefined && this.creds.expiration - Date.now() < margin;
    if (this.client && !stale) return this.client;
    return this.rebuild(stale);
  }

  /** A fresh client after an access error on generation `gen` (unless another request already refreshed). */
  private refreshAfter(gen: number): Promise<S3Client> {
    if (this.generation !== gen && this.client && !this.refreshing) return Promise.resolve(this.client);
    return this.rebuild(true);
  }

  private rebuild(force: boolean): Promise<S3Client> {
    if (this.refreshing) return this.refreshing;
    const o = this.options;
    this.refreshing = (async () => {
      try {
        if (o.credentials) this.creds = await o.credentials(force);
        const config: S3ClientConfig = {
          region: o.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
          maxAttempts: 1,
          followRegionRedirects: true,
        };
        if (o.endpoint) {
          config.endpoint = o.endpoint;
          config.forcePathStyle = true;
        }
        if (this.creds) {
          config.credentials = { accessKeyId: this.creds.accessKeyId, secretAccessKey: this.creds.secretAccessKey, sessionToken: this.creds.sessionToken };
        }
        if (this.client) this.retired.push(this.client);
        this.client = new S3Client(config);
        this.generation++;
        return this.client;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Runs `op` with retries: backoff on throttling/5xx/network errors, one credential refresh on access errors. */
  private async run<T>(key: string, verb: string, op: (client: S3Client) => Promise<T>): Promise<T> {
    const shown = joinKey(this.root, key);
    // Access errors refresh the credentials (shared with concurrent requests) up to 3 times
    // per request; only then are they final. Other failures go to withRetry's backoff.
    let refreshes = 0;
    let lastRetryable = true;
    const secrets = (): (string | undefined)[] => [this.creds?.secretAccessKey, this.creds?.sessionToken];
    return withRetry(
      async () => {
        for (;;) {
          const client = await this.getClient();
          const gen = this.generation;
          try {
            return await op(client);
          } catch (err) {
            const { status, code } = classify(err);
            if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) throw new StorageNotFoundError(this.root, key);
            const access = status === 403 || ACCESS_CODES.has(code);
            if (access && this.options.credentials) {
              if (refreshes < 3) {
                refreshes++;
                this.log?.(`${shown}: ${code || `HTTP ${status}`}; refreshing credentials`);
                await this.refreshAfter(gen);
                continue;
              }
              lastRetryable = false;
              throw new StorageError(`${verb} ${shown}: access denied even with fresh credentials (${code || `HTTP ${status}`})`, key, { cause: err });
            }
            lastRetryable = !(access || status === 400 || status === 416);
            const what = lastRetryable ? `${code || 'network error'}${status ? ` (HTTP ${status})` : ''}` : `${code || 'error'} (HTTP ${status ?? '?'})`;
            throw new StorageError(`${verb} ${shown}: ${what}: ${redact((err as Error).message, secrets())}`, key, { cause: err });
          }
        }
      },
      {
        retryable: (err) => !(err instanceof StorageNotFoundError) && lastRetryable,
        onRetry: (err, attempt, delay) => this.log?.(`${(err as Error).message}; retry ${attempt} in ${Math.round(delay)} ms`),
      },
    );
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const Key = this.objectKey(key);
    if (range && range.end <= range.start) return new Uint8Array(0);
    return this.run(key, 'GET', async (client) => {
      const out = await client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key, Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined }));
      if (!out.Body) return new Uint8Array(0);
      const bytes = await out.Body.transformToByteArray();
      // A dropped connection can end the body early without an error: check the length.
      if (out.ContentLength !== undefined && bytes.length !== out.ContentLength) {
        const e = new Error(`body ended after ${bytes.length} of ${out.ContentLength} bytes`);
        e.name = 'TruncatedBody';
        throw e;
      }
      return bytes;
    });
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    try {
      await this.run(key, 'HEAD', (client) => client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key })));
      return true;
    } catch (err) {
      if (err instanceof StorageNotFoundError) return false;
      throw err;
    }
  }

  async list(prefix = ''): Promise<string[]> {
    const base = this.options.prefix ? `${this.options.prefix}/` : '';
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.run(prefix, 'LIST', (client) =>
        client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: base + prefix, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key.slice(base.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  close(): void {
    for (const c of [...this.retired.splice(0), this.client]) c?.destroy();
    this.client = null;
  }
}
