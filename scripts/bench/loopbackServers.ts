/**
 * Servers the storage tests and `npm run bench -- --only=deeplake` start on 127.0.0.1: a minimal S3-compatible server (path-style
 * GetObject with Range, HeadObject, ListObjectsV2) over local folders, with injectable
 * faults, and a fake Activeloop API handing out expiring credentials for it.
 *
 * The S3 server checks the access key id (from the SigV4 Authorization header) and the
 * session token against the keys it was told about, not the signature itself.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export type Fault = { kind: '503' | 'drop' | 'truncate' | '500'; match?: string; times: number };

export interface S3Request {
  method: string;
  key: string;
  range?: string;
  accessKeyId?: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function xmlError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>1</RequestId></Error>`);
}

export class LoopbackS3 {
  url = '';
  readonly requests: S3Request[] = [];
  readonly faults: Fault[] = [];
  /** Valid keys: id → session token and expiry (ms since epoch), or revoked after `uses` requests. */
  readonly keys = new Map<string, { sessionToken?: string; expiresAt?: number; uses?: number }>();
  private server: Server;

  constructor(private readonly buckets: Record<string, string>) {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err) => xmlError(res, 500, 'InternalError', String(err))));
  }

  async start(): Promise<this> {
    this.url = await listen(this.server);
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private takeFault(key: string): Fault | null {
    const f = this.faults.find((x) => x.times > 0 && (!x.match || key.includes(x.match)));
    if (!f) return null;
    f.times--;
    return f;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const [, bucket, ...rest] = u.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const auth = String(req.headers.authorization ?? '');
    const accessKeyId = /Credential=([^/]+)\//.exec(auth)?.[1];
    this.requests.push({ method: req.method ?? '', key, range: req.headers.range as string | undefined, accessKeyId });
    const k = accessKeyId ? this.keys.get(accessKeyId) : undefined;
    if (!k) return xmlError(res, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    if (k.sessionToken !== undefined && req.headers['x-amz-security-token'] !== k.sessionToken) return xmlError(res, 403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
    if ((k.expiresAt !== undefined && Date.now() > k.expiresAt) || (k.uses !== undefined && k.uses-- <= 0)) return xmlError(res, 400, 'ExpiredToken', 'The provided token has expired.');
    const root = this.buckets[bucket ?? ''];
    if (!root) return xmlError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    const fault = this.takeFault(key);
    if (fault?.kind === 'drop') return void req.socket.destroy();
    if (fault?.kind === '503') return xmlError(res, 503, 'SlowDown', 'Please reduce your request rate.');
    if (fault?.kind === '500') return xmlError(res, 500, 'InternalError', 'We encountered an internal error.');
    if (req.method === 'GET' && u.searchParams.get('list-type') === '2') {
      const prefix = u.searchParams.get('prefix') ?? '';
      const all: string[] = [];
      const walk = async (rel: string): Promise<void> => {
        for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => [])) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) await walk(r);
          else all.push(r);
        }
      };
      await walk('');
      const keys = all.filter((x) => x.startsWith(prefix)).sort();
      const start = Number(u.searchParams.get('continuation-token') ?? 0);
      const page = keys.slice(start, start + 3);
      const more = start + 3 < keys.length;
      res.writeHead(200, { 'Content-Type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${page.length}</KeyCount><IsTruncated>${more}</IsTruncated>${more ? `<NextContinuationToken>${start + 3}</NextContinuationToken>` : ''}${page.map((x) => `<Contents><Key>${x}</Key><Size>1</Size></Contents>`).join('')}</ListBucketResult>`);
      return;
    }
    const file = path.join(root, key);
    const data = await fs.readFile(file).catch(() => null);
    if (!data) return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    let body = data;
    let status = 200;
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', ETag: '"x"', 'Accept-Ranges': 'bytes' };
    const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (m) {
      const a = Number(m[1]);
      const b = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
      if (a >= data.length) return xmlError(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
      body = data.subarray(a, b + 1);
      status = 206;
      headers['Content-Range'] = `bytes ${a}-${b}/${data.length}`;
    }
    headers['Content-Length'] = String(body.length);
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    if (fault?.kind === 'truncate') {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => req.socket.destroy(), 5);
      return;
    }
    res.end(body);
  }
}

export interface ApiCall {
  method: string;
  path: string;
  noCache?: string | null;
  authorized: boolean;
}

/** A fake Activeloop API for one org/dataset stored at s3://bucket/prefix on a LoopbackS3. */
export class FakeActiveloop {
  url = '';
  readonly calls: ApiCall[] = [];
  /** Agreements the dataset asks for until POSTed (empty: none). */
  agreements: string[] = [];
  agreed = false;
  /** Whether the dataset needs a logged-in user (the public token gets code 2). */
  private = true;
  /** Lifetime of issued credentials, seconds (the `expiration` field). */
  ttlSeconds = 12 * 3600;
  /** Issued keys stop working on S3 after this many requests (an expiry mid-epoch). */
  usesPerKey: number | undefined;
  /** Status codes to answer the next creds requests with before succeeding (throttling). */
  credsFailures: number[] = [];
  private issued = 0;
  private server: Server;

  constructor(private readonly s3: LoopbackS3, readonly token: string, private readonly where: { org: string; ds: string; bucket: string; prefix: string }) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    this.url = await listen(this.server);
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const authorized = bearer === this.token;
    this.calls.push({ method: req.method ?? '', path: u.pathname, noCache: u.searchParams.get('no_cache'), authorized });
    const { org, ds } = this.where;
    if (u.pathname === '/api/user/profile') return authorized ? this.json(res, 200, { name: 'tester' }) : this.json(res, 401, { description: 'Invalid token' });
    if (req.method === 'POST' && u.pathname === `/api/organization/${org}/dataset/${ds}/agree`) {
      this.agreed = true;
      return this.json(res, 200, {});
    }
    if (u.pathname === `/api/org/${org}/ds/${ds}/creds`) {
      const fail = this.credsFailures.shift();
      if (fail) return this.json(res, fail, { description: 'slow down' });
      if (this.private && !authorized) return this.json(res, 403, { code: 2, description: 'Login required' });
      if (this.agreements.length && !this.agreed) return this.json(res, 403, { code: 1, agreements: this.agreements });
      const id = `AKIALOOPBACK${++this.issued}`;
      const sessionToken = `session-${this.issued}`;
      const expiration = Math.floor(Date.now() / 1000) + this.ttlSeconds;
      this.s3.keys.set(id, { sessionToken, expiresAt: expiration * 1000, uses: this.usesPerKey });
      return this.json(res, 200, {
        path: `s3://${this.where.bucket}/${this.where.prefix}`,
        creds: { aws_access_key_id: id, aws_secret_access_key: `secret-${this.issued}`, aws_session_token: sessionToken, expiration, endpoint_url: this.s3.url },
        mode: 'r',
      });
    }
    if (u.pathname.startsWith(`/api/org/${org}/ds/`)) return this.json(res, 404, { description: 'Dataset not found' });
    this.json(res, 404, { description: 'no such route' });
  }
}
