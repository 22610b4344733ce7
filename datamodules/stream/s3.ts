import { Readable } from 'node:stream';

/**
 * s3:// objects as Node streams through @aws-sdk/client-s3's GetObject. Kept to this one
 * function so the shared storage layer can take it over. The endpoint comes from the option
 * (`--s3_endpoint`), else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (MinIO, Ceph, R2...),
 * else AWS's; credentials and region come from the SDK's usual chain.
 */
export interface S3Options {
  endpoint?: string;
}

/** Splits `s3://bucket/key` (throws on anything else). */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`${url}: expected s3://bucket/key`);
  return { bucket: m[1]!, key: m[2]! };
}

const clients = new Map<string, unknown>();

export async function openS3(url: string, options: S3Options = {}): Promise<Readable> {
  const { bucket, key } = parseS3Url(url);
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const sdk = await import('@aws-sdk/client-s3');
  const cacheKey = endpoint ?? '';
  let client = clients.get(cacheKey) as InstanceType<typeof sdk.S3Client> | undefined;
  if (!client) {
    client = new sdk.S3Client({
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    });
    clients.set(cacheKey, client);
  }
  let out;
  try {
    out = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    throw new Error(`${url}: S3 GetObject failed${status ? ` (HTTP ${status})` : ''}: ${e.name ?? ''} ${e.message ?? String(err)}`.trim());
  }
  const body = out.Body;
  if (!body) throw new Error(`${url}: S3 GetObject returned no body`);
  return body instanceof Readable ? body : Readable.from(body as AsyncIterable<Uint8Array>);
}
