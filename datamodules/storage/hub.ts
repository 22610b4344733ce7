/**
 * `hub://org/dataset[/.queries/<id>]`: Deep Lake's hosted datasets, read from S3 with the
 * temporary credentials the Activeloop API hands out (deeplake 3.9 client/client.py):
 *
 * - token: the option (`--token`), else `ACTIVELOOP_TOKEN`, else deeplake's public token;
 * - a non-public token is checked first with `GET /api/user/profile`;
 * - `GET /api/org/{org}/ds/{ds}/creds?mode=r&no_cache=…&db_engine=…` → `{path, creds, region?}`;
 * - 403 `{code: 1, agreements}`: the dataset needs its licence accepted; with `acceptAgreements`
 *   lightclip POSTs `/api/organization/{org}/dataset/{ds}/agree` and asks again, else a clear
 *   error; `code: 2` or 401: a login/valid token is needed;
 * - credentials are refreshed (`no_cache=True`) before `expiration` and after S3 access errors.
 *
 * Base URL: `LIGHTCLIP_ACTIVELOOP_URL`, default https://app.activeloop.ai. The token only ever
 * goes into the Authorization header: it is redacted from every message and kept in a closure.
 */
import { redact, withRetry } from './retry.js';
import { S3Storage, type S3Credentials } from './s3.js';
import { StorageError, type Storage } from './types.js';

export const DEFAULT_ACTIVELOOP_URL = 'https://app.activeloop.ai';
/** deeplake's anonymous token: "PUBLIC_TOKEN_" followed by 150 underscores. */
export const PUBLIC_TOKEN = `PUBLIC_TOKEN_${'_'.repeat(150)}`;
const CLIENT_VERSION = '3.9.15';

export interface HubOptions {
  token?: string;
  /** Accept a dataset's licence agreements when the API asks (`--deeplake_agree`). Default false. */
  acceptAgreements?: boolean;
  /** Overrides the credentials' endpoint_url (tests, S3-compatible mirrors). */
  s3Endpoint?: string;
  refreshMarginMs?: number;
  log?: ((line: string) => void) | null;
}

/** An Activeloop API failure that retrying will not fix (bad token, agreement, missing dataset). */
export class HubError extends StorageError {
  constructor(message: string, readonly status?: number) {
    super(message, '');
    this.name = 'HubError';
  }
}

export function parseHubUrl(url: string): { org: string; ds: string; subpath: string } {
  const m = /^hub:\/\/([^/]+)\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new HubError(`${url}: expected hub://org/dataset[/.queries/<id>]`);
  return { org: m[1]!, ds: m[2]!, subpath: (m[3] ?? '').replace(/^\/+|\/+$/g, '') };
}

interface CredsResponse {
  path?: string;
  creds?: {
    aws_access_key_id?: string;
    aws_secret_access_key?: string;
    aws_session_token?: string;
    expiration?: number | string;
    endpoint_url?: string;
    aws_region?: string;
    region?: string;
  };
  region?: string;
}

/** Opens the S3 storage behind a hub:// dataset. */
export async function openHubStorage(url: string, options: HubOptions = {}): Promise<Storage> {
  const { org, ds, subpath } = parseHubUrl(url);
  const label = `hub://${org}/${ds}${subpath ? `/${subpath}` : ''}`;
  const token = options.token || process.env.ACTIVELOOP_TOKEN || PUBLIC_TOKEN;
  const isPublic = token.startsWith('PUBLIC_TOKEN_');
  const base = (process.env.LIGHTCLIP_ACTIVELOOP_URL || DEFAULT_ACTIVELOOP_URL).replace(/\/+$/, '');
  const log = options.log === undefined ? (line: string) => console.warn(line) : options.log;
  const clean = (s: string): string => redact(s, [token]);
  const headers = { Authorization: `Bearer ${token}`, 'X-Activeloop-Provider-Type': 'activeloop', 'hub-cli-version': CLIENT_VERSION };

  /** One API call with retries on 5xx/429/network errors; other statuses are returned. */
  const call = (method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }> =>
    withRetry(
      async () => {
        let res: Response;
        try {
          res = await fetch(`${base}${path}`, { method, headers: method === 'POST' ? { ...headers, 'Content-Type': 'application/json' } : headers, body: method === 'POST' ? '{}' : undefined });
        } catch (err) {
          throw new StorageError(clean(`${method} ${base}${path}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`), '');
        }
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        if (res.status >= 500 || res.status === 429) throw new StorageError(clean(`${method} ${base}${path}: HTTP ${res.status}`), '');
        return { status: res.status, body };
      },
      {
        retryable: (err) => !(err instanceof HubError),
        onRetry: (err, attempt, delay) => log?.(`${(err as Error).message}; retry ${attempt} in ${Math.round(delay)} ms`),
      },
    );

  const describeError = (status: number, body: unknown, path: string): string => {
    const b = (body && typeof body === 'object' ? body : {}) as { description?: string; message?: string; error?: string };
    const detail = b.description ?? b.message ?? b.error ?? (typeof body === 'string' ? body.slice(0, 200) : '');
    return clean(`${label}: ${base}${path} answered HTTP ${status}${detail ? `: ${detail}` : ''}`);
  };

  if (!isPublic) {
    const r = await call('GET', '/api/user/profile');
    if (r.status === 401 || r.status === 403) {
      throw new HubError(`${label}: the Activeloop token was rejected (HTTP ${r.status}): pass a valid --token or ACTIVELOOP_TOKEN`, r.status);
    }
    if (r.status >= 400) throw new HubError(describeError(r.status, r.body, '/api/user/profile'), r.status);
  }

  let agreed = false;
  const fetchCreds = async (noCache: boolean): Promise<{ path: string; creds: S3Credentials; endpoint?: string; region?: string }> => {
    const q = `mode=r&no_cache=${noCache ? 'True' : 'False'}&db_engine=${encodeURIComponent('{"enabled": false}')}`;
    const path = `/api/org/${encodeURIComponent(org)}/ds/${encodeURIComponent(ds)}/creds?${q}`;
    for (;;) {
      const r = await call('GET', path);
      if (r.status === 200) {
        const body = r.body as CredsResponse;
        const c = body.creds;
        if (!body.path || !c?.aws_access_key_id || !c.aws_secret_access_key) {
          throw new HubError(`${label}: the Activeloop API's credentials response lacks "path" or "creds"`);
        }
        const exp = c.expiration === undefined ? undefined : Number(c.expiration) * 1000;
        return {
          path: body.path,
          creds: { accessKeyId: c.aws_access_key_id, secretAccessKey: c.aws_secret_access_key, sessionToken: c.aws_session_token, expiration: Number.isFinite(exp) ? exp : undefined },
          endpoint: c.endpoint_url,
          region: c.aws_region ?? c.region ?? body.region,
        };
      }
      const b = (r.body && typeof r.body === 'object' ? r.body : {}) as { code?: number; agreements?: unknown[] };
      if (r.status === 403 && b.code === 1 && Array.isArray(b.agreements)) {
        const names = b.agreements.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join('; ');
        if (!options.acceptAgreements || agreed) {
          throw new HubError(`${label}: the dataset requires accepting its agreement(s) first: ${clean(names)}. Read them, then rerun with --deeplake_agree`, 403);
        }
        const a = await call('POST', `/api/organization/${encodeURIComponent(org)}/dataset/${encodeURIComponent(ds)}/agree`);
        if (a.status >= 400) throw new HubError(describeError(a.status, a.body, '/agree'), a.status);
        log?.(`${label}: accepted the dataset's agreement(s): ${clean(names)}`);
        agreed = true;
        continue;
      }
      if ((r.status === 403 && b.code === 2) || r.status === 401) {
        throw new HubError(`${label}: login required${isPublic ? ' (no token given)' : ' (the token was rejected)'}: pass --token or set ACTIVELOOP_TOKEN`, r.status);
      }
      if (r.status === 404) throw new HubError(`${label}: no such dataset (or no access to it) at ${base}`, 404);
      throw new HubError(describeError(r.status, r.body, path.split('?')[0]!), r.status);
    }
  };

  const first = await fetchCreds(false);
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(first.path);
  if (!m) throw new HubError(`${label}: dataset storage ${JSON.stringify(first.path)} is not s3:// (gcs:// and az:// are not supported)`);
  let current: S3Credentials | null = first.creds;
  const prefix = [m[2]!.replace(/\/+$/, ''), subpath].filter(Boolean).join('/');
  return new S3Storage({
    bucket: m[1]!,
    prefix,
    endpoint: options.s3Endpoint || first.endpoint,
    region: first.region,
    root: label,
    refreshMarginMs: options.refreshMarginMs,
    log,
    credentials: async (force) => {
      if (current && !force) {
        const c = current;
        current = null; // the initial creds are used once; later calls mean a refresh
        return c;
      }
      log?.(`${label}: refreshing S3 credentials`);
      return (await fetchCreds(true)).creds;
    },
  });
}
