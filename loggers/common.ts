/**
 * What the TensorBoard and CSV loggers share: option checking, Lightning's versioned
 * directories (`<saveDir>/<name>/version_N`), hyperparameter flattening and `hparams.yaml`.
 * Internal to `loggers/` (not re-exported by `loggers/index.ts`).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MisconfigurationError, showValue } from '../core/errors.js';
import { Logger } from '../core/logger.js';

/** Options every versioned-directory logger takes. */
export interface VersionedLoggerOptions {
  /** Root folder; logs go to `<saveDir>/<name>/version_N`. */
  readonly saveDir: string;
  /** Experiment name, a sub-folder of `saveDir`; `''` puts versions directly in `saveDir`. Default `lightning_logs`. */
  readonly name?: string;
  /**
   * A number N means `version_N`; a string is used as the folder name as is; left out,
   * the next free `version_N` is taken (as Lightning's `_get_next_version`).
   */
  readonly version?: number | string;
}

/** A spec of one extra option for {@link parseOptions}: its expected `typeof` and a check. */
export interface OptionSpec {
  readonly type: 'string' | 'number' | 'boolean';
  readonly check?: (value: never) => boolean;
  readonly expected?: string;
}

/**
 * Checks a logger's options object (from code or from the registry) and returns it typed.
 * @throws MisconfigurationError naming the option, the value received and what was expected
 */
export function parseOptions<T extends VersionedLoggerOptions>(
  raw: unknown,
  logger: string,
  extra: Readonly<Record<string, OptionSpec>> = {},
): T {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new MisconfigurationError(`${logger} options must be an object with at least \`saveDir\`, got ${showValue(raw)}.`);
  }
  const o = raw as Record<string, unknown>;
  const allowed = ['saveDir', 'name', 'version', ...Object.keys(extra)];
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) {
      throw new MisconfigurationError(`Unknown ${logger} option \`${key}\`. Available: ${allowed.join(', ')}.`);
    }
  }
  if (typeof o.saveDir !== 'string' || o.saveDir === '') {
    throw new MisconfigurationError(`${logger} \`saveDir\` must be a non-empty path, got ${showValue(o.saveDir)}.`);
  }
  if (o.name !== undefined && typeof o.name !== 'string') {
    throw new MisconfigurationError(`${logger} \`name\` must be a string, got ${showValue(o.name)}.`);
  }
  const v = o.version;
  const validVersion =
    v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && v !== '' && !/[\\/]/.test(v));
  if (!validVersion) {
    throw new MisconfigurationError(
      `${logger} \`version\` must be a non-negative integer or a folder name without slashes, got ${showValue(v)}.`,
    );
  }
  for (const [key, spec] of Object.entries(extra)) {
    const value = o[key];
    if (value === undefined) continue;
    if (typeof value !== spec.type || (spec.check !== undefined && !spec.check(value as never))) {
      throw new MisconfigurationError(`${logger} \`${key}\` must be ${spec.expected ?? `a ${spec.type}`}, got ${showValue(value)}.`);
    }
  }
  return o as T;
}

/** Highest N of the `version_N` folders in `rootDir`, plus one (0 when there is none). */
export function nextVersion(rootDir: string): number {
  if (!existsSync(rootDir)) return 0;
  let next = 0;
  for (const entry of readdirSync(rootDir, { withFileTypes: true })) {
    const m = /^version_(\d+)$/.exec(entry.name);
    if (entry.isDirectory() && m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/**
 * Base of the loggers that write into a versioned folder. The folder is resolved (and
 * created) on first use, not in the constructor, so building a logger on a rank that never
 * logs leaves no empty folder behind. An automatic version is claimed with a non-recursive
 * `mkdir`, so two loggers started together never share a folder.
 */
export abstract class VersionedDirLogger extends Logger {
  /** Name of the hyperparameters file in {@link logDir} (Lightning's `NAME_HPARAMS_FILE`). */
  static readonly NAME_HPARAMS_FILE = 'hparams.yaml';

  /** The `saveDir` option. */
  readonly saveDir: string;
  private readonly experimentName: string;
  private readonly requestedVersion: number | string | undefined;
  private resolved: { version: number | string; logDir: string } | undefined;
  /** Every hyperparameter logged so far, merged (Lightning's `self.hparams.update(params)`). */
  protected hparams: Record<string, unknown> = {};

  protected constructor(options: VersionedLoggerOptions) {
    super();
    this.saveDir = options.saveDir;
    this.experimentName = options.name ?? 'lightning_logs';
    this.requestedVersion = options.version;
  }

  /** The experiment name (`lightning_logs` by default), as Lightning's `logger.name`. */
  get name(): string {
    return this.experimentName;
  }

  /** `<saveDir>/<name>`, where the version folders live. */
  get rootDir(): string {
    return this.experimentName ? join(this.saveDir, this.experimentName) : this.saveDir;
  }

  /** The version number (or string), resolving and creating the folder on first access. */
  get version(): number | string {
    return this.resolve().version;
  }

  /** `<saveDir>/<name>/version_N`, created on first access. */
  get logDir(): string {
    return this.resolve().logDir;
  }

  private resolve(): { version: number | string; logDir: string } {
    if (this.resolved) return this.resolved;
    const root = this.rootDir;
    const req = this.requestedVersion;
    if (req !== undefined) {
      const logDir = join(root, typeof req === 'number' ? `version_${req}` : req);
      mkdirSync(logDir, { recursive: true });
      this.resolved = { version: req, logDir };
      return this.resolved;
    }
    mkdirSync(root, { recursive: true });
    for (let v = nextVersion(root); ; v++) {
      const logDir = join(root, `version_${v}`);
      try {
        mkdirSync(logDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      this.resolved = { version: v, logDir };
      return this.resolved;
    }
  }

  /** Merges `params` into the stored hyperparameters and rewrites `hparams.yaml`. */
  protected recordHyperparams(params: Record<string, unknown>): void {
    Object.assign(this.hparams, params);
    writeHparamsYaml(join(this.logDir, VersionedDirLogger.NAME_HPARAMS_FILE), this.hparams);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Flattens nested plain objects into `a/b/c` keys, as Lightning's `_flatten_dict` does
 * before handing hyperparameters to TensorBoard (its hparams view has no nesting).
 */
export function flattenParams(params: Record<string, unknown>, delimiter = '/', prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    const key = prefix ? `${prefix}${delimiter}${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length > 0) Object.assign(out, flattenParams(v, delimiter, key));
    else out[key] = v;
  }
  return out;
}

/**
 * Makes every flat value a number, string or boolean, as Lightning's `_sanitize_params`:
 * functions become their name, `null` becomes "null", arrays and objects become JSON.
 * `undefined` values are dropped, as torch's `hparams` drops `None`.
 */
export function sanitizeParams(flat: Record<string, unknown>): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(flat)) {
    if (v === undefined) continue;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'bigint') out[k] = Number(v);
    else if (typeof v === 'function') out[k] = v.name || 'function';
    else if (v === null) out[k] = 'null';
    else {
      const json = safeJson(v);
      out[k] = json ?? String(v);
    }
  }
  return out;
}

function safeJson(v: unknown): string | undefined {
  try {
    return JSON.stringify(v);
  } catch {
    return undefined;
  }
}

/**
 * A copy of `value` that YAML can represent: functions and symbols are dropped (Lightning
 * skips values `yaml.dump` rejects, with a warning), typed arrays become lists, Maps become
 * mappings, bigints numbers, cycles `null`.
 */
function toYamlSafe(value: unknown, seen: Set<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'object') return undefined;
  if (seen.has(value)) return null;
  seen.add(value);
  try {
    if (value instanceof Date) return value.toISOString();
    if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
    if (Array.isArray(value)) return value.map((v) => toYamlSafe(v, seen) ?? null);
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const safe = toYamlSafe(v, seen);
      if (safe !== undefined) out[String(k)] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * Writes `hparams` to `path` as YAML (Lightning's `save_hparams_to_yaml`), through a
 * temporary file and a rename so a crash never leaves a half-written file.
 */
export function writeHparamsYaml(path: string, hparams: Record<string, unknown>): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, stringify(toYamlSafe(hparams, new Set()) ?? {}));
  renameSync(tmp, path);
}
