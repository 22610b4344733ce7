/**
 * Resolves a Hugging Face model id or a local directory to a directory of files.
 *
 * A local directory is used as is. Otherwise `idOrDir` is a hub id (`bert-base-uncased`,
 * `johngiorgi/declutr-small`) and the files are looked up in a cache
 * (`~/.cache/lightclip/hub/<org>--<name>/<revision>/`), downloading the missing ones from
 * `https://huggingface.co/<id>/resolve/<revision>/<file>` when the process is online. With
 * `offline` (or `HF_HUB_OFFLINE=1`) only the cache is consulted; either way a file that can
 * be neither found nor fetched is a clear error naming the cache path.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { MisconfigurationError, showValue } from '../../core/errors.js';

/** The subset of `fetch` the hub client uses (tests pass a fake). */
export type FetchLike = (url: string, init: { headers: Record<string, string> }) => Promise<Response>;

/** Where and how to fetch hub files. */
export interface HubOptions {
  /** Cache root (default `$LIGHTCLIP_CACHE/hub` or `~/.cache/lightclip/hub`). */
  cacheDir?: string;
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Never touch the network (default: `HF_HUB_OFFLINE=1` in the environment). */
  offline?: boolean;
  /** Access token for gated or private repositories, sent as a bearer token. */
  token?: string;
  /** Hub address (default `$HF_ENDPOINT` or https://huggingface.co). */
  endpoint?: string;
  /** The fetch implementation (default the global `fetch`). */
  fetch?: FetchLike;
}

/** One required (or optional) file, given as alternatives tried in order. */
export interface HubFileSpec {
  anyOf: readonly string[];
  optional?: boolean;
}

/** Raised when a hub file is neither cached nor downloadable. */
export class HubDownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubDownloadError';
  }
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

/** The default cache root: `$LIGHTCLIP_CACHE/hub`, else `~/.cache/lightclip/hub`. */
export function defaultHubCacheDir(): string {
  const root = process.env.LIGHTCLIP_CACHE;
  return root ? join(root, 'hub') : join(homedir(), '.cache', 'lightclip', 'hub');
}

/** The cache directory of one repository revision: `<cacheDir>/<org>--<name>/<revision>`. */
export function hubSnapshotDir(repoId: string, revision = 'main', cacheDir = defaultHubCacheDir()): string {
  // Revisions may hold '/' (refs/pr/1): encoded so each revision is one directory.
  return join(cacheDir, repoId.replace('/', '--'), encodeURIComponent(revision));
}

function isOffline(options: HubOptions): boolean {
  return options.offline ?? ['1', 'true', 'yes'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

/** A 404 remembered as a marker file, so an optional file absent from the repo is not re-requested on every load. */
function missingMarker(dir: string, file: string): string {
  return join(dir, `.${file.replace(/\//g, '_')}.404`);
}

async function download(repoId: string, file: string, dir: string, options: HubOptions): Promise<'ok' | 'missing'> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const revision = options.revision ?? 'main';
  const url = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`;
  const doFetch: FetchLike = options.fetch ?? ((u, init) => fetch(u, init));
  const headers: Record<string, string> = { 'user-agent': 'lightclip' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let res: Response;
  try {
    res = await doFetch(url, { headers });
  } catch (err) {
    throw new HubDownloadError(
      `Could not download ${url} (${(err as Error).message}); the machine looks offline. ${file} is not cached in ${dir}: ` +
        'pass a local model directory, or download the files there first.',
    );
  }
  if (res.status === 404) return 'missing';
  if (!res.ok || !res.body) {
    const hint = res.status === 401 || res.status === 403 ? ' (gated or private repository: pass `token`)' : '';
    throw new HubDownloadError(`Downloading ${url} failed with HTTP ${res.status} ${res.statusText}${hint}`);
  }
  const dest = join(dir, file);
  mkdirSync(join(dest, '..'), { recursive: true });
  // Written beside the target and renamed, so an interrupted download never looks cached.
  const part = `${dest}.part-${process.pid}`;
  try {
    await pipeline(Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>), createWriteStream(part));
    renameSync(part, dest);
  } catch (err) {
    rmSync(part, { force: true });
    throw new HubDownloadError(`Downloading ${url} was interrupted: ${(err as Error).message}`);
  }
  return 'ok';
}

/** Resolves one spec inside `dir`; returns the file name used, or null for an absent optional file. */
async function ensureFile(repoId: string | null, dir: string, spec: HubFileSpec, options: HubOptions): Promise<string | null> {
  const cached = spec.anyOf.find((f) => existsSync(join(dir, f)));
  if (cached) return cached;
  const describe = spec.anyOf.map((f) => `\`${f}\``).join(' or ');
  if (repoId === null) {
    if (spec.optional) return null;
    throw new MisconfigurationError(`Model directory ${dir} has no ${describe}`);
  }
  const remembered = spec.anyOf.every((f) => existsSync(missingMarker(dir, f)));
  if (isOffline(options) || remembered) {
    if (spec.optional) return null;
    throw new HubDownloadError(
      `${describe} of \`${repoId}\` is not in the cache ${dir} and ${remembered ? 'the hub does not have it' : 'the hub is offline (HF_HUB_OFFLINE / `offline`)'}; ` +
        'pass a local model directory or fill the cache while online.',
    );
  }
  for (const f of spec.anyOf) {
    let outcome: 'ok' | 'missing';
    try {
      outcome = await download(repoId, f, dir, options);
    } catch (err) {
      // An optional file (tokenizer_config.json) is not worth failing a load for.
      if (spec.optional) return null;
      throw err;
    }
    if (outcome === 'ok') return f;
    mkdirSync(dir, { recursive: true });
    writeFileSync(missingMarker(dir, f), '');
  }
  if (spec.optional) return null;
  throw new HubDownloadError(`\`${repoId}\` (revision ${options.revision ?? 'main'}) has none of ${describe}`);
}

/** Shard file names listed by a `*.index.json` (`{"weight_map": {tensor: file}}`). */
export function shardFiles(indexFile: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexFile, 'utf8'));
  } catch (err) {
    throw new MisconfigurationError(`${indexFile}: not readable JSON (${(err as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null) throw new MisconfigurationError(`${indexFile}: \`weight_map\` must be an object of tensor → shard file`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  if (!files.every((f): f is string => typeof f === 'string' && !f.includes('..') && !isAbsolute(f))) {
    throw new MisconfigurationError(`${indexFile}: \`weight_map\` values must be relative file names, got ${showValue(files)}`);
  }
  return files;
}

/** A resolved model location: the directory and, for each spec, the file found (null for absent optional ones). */
export interface ResolvedFiles {
  dir: string;
  /** Repository id when resolved through the hub cache, null for a local directory. */
  repoId: string | null;
  files: Array<string | null>;
}

/**
 * Finds (or downloads into the cache) the files of a model.
 * @param idOrDir a local directory, or a hub id such as `johngiorgi/declutr-small`.
 * @param specs the files needed; `*.index.json` weights also fetch their shards.
 * @throws MisconfigurationError for a missing local directory or file, or a malformed id.
 * @throws HubDownloadError when a required file is neither cached nor downloadable.
 */
export async function resolveFiles(idOrDir: string, specs: readonly HubFileSpec[], options: HubOptions = {}): Promise<ResolvedFiles> {
  let dir: string;
  let repoId: string | null = null;
  if (existsSync(idOrDir)) {
    if (!statSync(idOrDir).isDirectory()) throw new MisconfigurationError(`\`${idOrDir}\` is a file; expected a model directory (with config.json) or a hub id`);
    dir = idOrDir;
  } else if (isAbsolute(idOrDir) || idOrDir.startsWith('.') || idOrDir.startsWith('~') || idOrDir.includes('\\') || !REPO_ID.test(idOrDir)) {
    throw new MisconfigurationError(`Model directory ${showValue(idOrDir)} does not exist, and it is not a hub id of the form "org/name"`);
  } else {
    repoId = idOrDir;
    dir = hubSnapshotDir(repoId, options.revision ?? 'main', options.cacheDir ?? defaultHubCacheDir());
  }
  const files: Array<string | null> = [];
  for (const spec of specs) {
    const f = await ensureFile(repoId, dir, spec, options);
    files.push(f);
    if (f?.endsWith('.index.json')) {
      for (const shard of shardFiles(join(dir, f))) await ensureFile(repoId, dir, { anyOf: [shard] }, options);
    }
  }
  return { dir, repoId, files };
}
