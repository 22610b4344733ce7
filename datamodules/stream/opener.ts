import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { openS3, type S3Options } from './s3.js';

/** Options of {@link openShard}. */
export interface OpenOptions {
  s3?: S3Options;
  /** Aborts the read (the consumer stopped). */
  signal?: AbortSignal;
}

/**
 * Opens a shard URL as a byte stream, as webdataset's `gopen` does: a local path (or
 * `file:`), `pipe:CMD` (CMD's stdout through `sh -c`; a non-zero exit is an error), `http(s)://`
 * (a status other than 200 is an error naming it) and `s3://bucket/key`. The stream is
 * gunzipped when it starts with the gzip magic (tar's `r|*`), so `.tar.gz`/`.tgz` shards need
 * no flag; a gzip that ends early makes the stream fail with zlib's "unexpected end of file".
 */
export async function openShard(url: string, options: OpenOptions = {}): Promise<Readable> {
  const raw = await openRaw(url, options);
  return maybeGunzip(raw, url);
}

async function openRaw(url: string, options: OpenOptions): Promise<Readable> {
  if (url.startsWith('pipe:')) return openPipe(url.slice(5), url);
  if (/^https?:\/\//.test(url)) return openHttp(url, options.signal);
  if (url.startsWith('s3://')) return openS3(url, options.s3);
  const file = url.startsWith('file://') ? new URL(url).pathname : url.startsWith('file:') ? url.slice(5) : url;
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err) => reject(new Error(`${url}: cannot open: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
  });
  return stream;
}

function openPipe(command: string, url: string): Readable {
  const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 2000) stderr += d.toString();
  });
  child.stdout.pipe(out, { end: false });
  let stdoutDone = false;
  let exit: number | null | undefined;
  const finish = (): void => {
    if (!stdoutDone || exit === undefined) return;
    if (exit === 0) out.end();
    else out.destroy(new Error(`${url}: command exited with code ${exit}${stderr ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : ''}`));
  };
  child.stdout.on('end', () => {
    stdoutDone = true;
    finish();
  });
  child.on('close', (code) => {
    exit = code;
    finish();
  });
  child.on('error', (err) => out.destroy(new Error(`${url}: cannot run: ${err.message}`)));
  out.on('close', () => {
    if (exit === undefined) child.kill();
  });
  return out;
}

function openHttp(url: string, signal?: AbortSignal): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        openHttp(new URL(res.headers.location, url).href, signal).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new Error(`${url}: HTTP ${status} ${res.statusMessage ?? ''}`.trim()));
        return;
      }
      resolve(res);
    });
    req.on('error', (err) => reject(new Error(`${url}: ${err.message}`)));
  });
}

/** Peeks at the first bytes; pipes through gunzip when they are 1f 8b. */
async function maybeGunzip(raw: Readable, url: string): Promise<Readable> {
  const it = raw[Symbol.asyncIterator]();
  let first: Buffer = Buffer.alloc(0);
  const head: Buffer[] = [];
  while (first.length < 2) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    head.push(b);
    first = Buffer.concat(head);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    }
  }
  const body = Readable.from(rest(), { objectMode: false });
  body.on('close', () => raw.destroy());
  if (first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip();
    body.on('error', (err) => gunzip.destroy(err));
    gunzip.on('error', () => undefined);
    const out = body.pipe(gunzip);
    const wrapped = new PassThrough();
    out.on('error', (err) => wrapped.destroy(new Error(`${url}: gzip: ${err.message}`)));
    out.pipe(wrapped);
    wrapped.on('close', () => body.destroy());
    return wrapped;
  }
  return body;
}
