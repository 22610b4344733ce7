/**
 * Typed configuration: a config class declares fields with defaults, class-validator
 * constraints and `@Describe` texts; values arrive from defaults < config files
 * (`--config recipe.yaml`, JSON or YAML) < command-line flags, are converted to the
 * declared types, filled in with class-transformer and validated with class-validator.
 * Every error names the key, what was expected, the value received and where it came from:
 * "`batch_size` must be an integer ≥ 1, got "abc" (from command line)".
 *
 * @example
 * class TrainCfg {
 *   @Describe('Images per step') @IsInt() @Min(1) batch_size = 8;
 *   @Describe('Peak learning rate') @IsNumber() @IsPositive() lr = 5e-4;
 * }
 * const r = resolveConfig(TrainCfg, process.argv.slice(2));
 * if (r.help) console.log(renderConfigHelp(TrainCfg)); else train(r.config);
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { parse as parseYaml } from 'yaml';
import { configFields, describeExpected, elementKind, findField, normalizeKey, PHRASED_CONSTRAINTS, type ConfigClass, type ConfigField } from './configSchema.js';
import { MisconfigurationError, showValue } from './errors.js';

export { configFields, Describe, describeExpected, renderConfigHelp, type ConfigClass, type ConfigField, type HelpOptions } from './configSchema.js';

/** The source name used for values parsed from flags. */
export const COMMAND_LINE = 'command line';

/** One layer of configuration values and where they came from (a file path, `command line`). */
export interface ConfigLayer {
  values: unknown;
  source: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------- command line

/** Values a boolean flag may be followed by (`--flag false`); `toBoolean` accepts the same words. */
const BOOLEAN_WORDS = new Set(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']);

/** Options of `parseCliFlags`. */
export interface CliOptions {
  /** Flags that never take a value, so `--fast_dev_run data/` does not swallow `data/` (matched ignoring `-`/`_`/case). */
  booleanFlags?: readonly string[];
}

/**
 * Turns flags into a nested plain object; values stay strings (types are applied by
 * `parseConfig`, which knows them). `--a 1` and `--a=1` give `a: "1"`; a flag followed by
 * another flag is `true`; a flag listed in `booleanFlags` is `true` unless followed by a
 * boolean word (`--a false`, `--a=false`); `--no-a` is `false`; dots nest
 * (`--ddp.rank 1` → `{ddp: {rank: "1"}}`); a repeated flag becomes an array; `-h` is `--help`.
 * @throws MisconfigurationError for stray positional arguments and conflicting flags.
 * @example parseCliFlags(['--batch_size', '8', '--lr=1e-3', '--fast_dev_run', '--ddp.rank', '1'])
 */
export function parseCliFlags(argv: readonly string[], options: CliOptions = {}): Record<string, unknown> {
  const booleans = new Set((options.booleanFlags ?? []).map(normalizeKey));
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    let key: string;
    let value: unknown;
    if (token === '-h') {
      [key, value] = ['help', true];
    } else if (!token.startsWith('--')) {
      throw new MisconfigurationError(`Unexpected argument ${showValue(token)}: options are written \`--name value\` or \`--name=value\``);
    } else if (token.includes('=')) {
      const eq = token.indexOf('=');
      [key, value] = [token.slice(2, eq), token.slice(eq + 1)];
    } else if (token.startsWith('--no-')) {
      [key, value] = [token.slice(5), false];
    } else {
      key = token.slice(2);
      const next = argv[i + 1];
      // A value never starts with `--`, but may start with `-` (`--lr -1e-3`).
      // A boolean flag takes a value only when it is a boolean word (`--progress_bar false`),
      // so `--fast_dev_run data/` still reports `data/` instead of swallowing it.
      const isBoolean = booleans.has(normalizeKey(key));
      if (next !== undefined && !next.startsWith('--') && (!isBoolean || BOOLEAN_WORDS.has(next.toLowerCase()))) {
        value = next;
        i++;
      } else {
        value = true;
      }
    }
    if (!/^[^.\s]+(\.[^.\s]+)*$/.test(key)) throw new MisconfigurationError(`Malformed flag ${showValue(token)}: expected \`--name\` or \`--group.name\``);
    setFlag(out, key.split('.'), value, key);
  }
  return out;
}

function setFlag(target: Record<string, unknown>, path: string[], value: unknown, flag: string): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const child = node[part];
    if (child === undefined) node[part] = {};
    else if (!isPlainObject(child)) throw new MisconfigurationError(`\`--${flag}\` conflicts with \`--${path.slice(0, path.indexOf(part) + 1).join('.')}\` given as a value`);
    node = node[part] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  const existing = node[last];
  if (isPlainObject(existing)) throw new MisconfigurationError(`\`--${flag}\` is given a value but also has sub-options (\`--${flag}.…\`)`);
  node[last] = existing === undefined ? value : Array.isArray(existing) ? [...(existing as unknown[]), value] : [existing, value];
}

// ---------------------------------------------------------------- files

/**
 * Reads a config file: `.json`, or `.yaml`/`.yml` (YAML 1.2). An empty YAML file is `{}`.
 * @throws MisconfigurationError naming the file when it is missing, unparsable (with the
 *   parser's line and column) or not a mapping at the top level.
 */
export function loadConfigFile(filePath: string): Record<string, unknown> {
  const ext = extname(filePath).toLowerCase();
  if (!['.json', '.yaml', '.yml'].includes(ext)) {
    throw new MisconfigurationError(`Config file ${showValue(filePath)} must end in .json, .yaml or .yml, got ${showValue(ext || '(no extension)')}`);
  }
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (err) {
    throw new MisconfigurationError(`Cannot read config file ${showValue(filePath)}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new MisconfigurationError(`Config file ${showValue(filePath)} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) throw new MisconfigurationError(`Config file ${showValue(filePath)} must hold a mapping of keys to values, got ${showValue(parsed)}`);
  return parsed;
}

// ---------------------------------------------------------------- parsing

/** One value after merging: the field it sets, the value as given, and where it came from. */
interface Leaf {
  field: ConfigField;
  value: unknown;
  source: string;
  /** The dotted key as the user spelled it (`ddp.world-size`), for messages. */
  display: string;
}

/** Flattens one layer into `leaves` (later layers overwrite), recording unknown keys in `errors`. */
function collect(cls: ConfigClass, values: unknown, source: string, path: string[], shown: string[], leaves: Map<string, Leaf>, errors: string[]): void {
  if (!isPlainObject(values)) {
    errors.push(`The configuration from ${source} must be a mapping of keys to values, got ${showValue(values)}`);
    return;
  }
  const fields = configFields(cls);
  for (const [rawKey, value] of Object.entries(values)) {
    const keyShown = [...shown, rawKey];
    const field = findField(fields, rawKey);
    if (field === undefined) {
      const where = path.length > 0 ? ` under \`${path.join('.')}\`` : '';
      errors.push(`Unknown key \`${keyShown.join('.')}\` (from ${source}); allowed keys${where}: ${fields.map((f) => f.key).join(', ')}`);
      continue;
    }
    const keyPath = [...path, field.key];
    const id = keyPath.join('.');
    if (field.nested && isPlainObject(value)) {
      leaves.delete(id);
      collect(field.nested, value, source, keyPath, keyShown, leaves, errors);
    } else {
      for (const k of [...leaves.keys()]) if (k.startsWith(`${id}.`)) leaves.delete(k);
      leaves.set(id, { field, value, source, display: keyShown.join('.') });
    }
  }
}

const NOT_CONVERTIBLE = Symbol('not convertible');

function toNumber(v: unknown): number | typeof NOT_CONVERTIBLE {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return NOT_CONVERTIBLE;
}

function toBoolean(v: unknown): boolean | typeof NOT_CONVERTIBLE {
  if (typeof v === 'boolean') return v;
  const s = typeof v === 'string' ? v.toLowerCase() : v;
  if (s === 'true' || s === '1' || s === 'yes' || s === 'on' || s === 1) return true;
  if (s === 'false' || s === '0' || s === 'no' || s === 'off' || s === 0) return false;
  return NOT_CONVERTIBLE;
}

/**
 * Converts a value to the field's declared type: flags arrive as strings, and YAML may
 * write `8` for a string field. Done here rather than with class-transformer's implicit
 * conversion, which turns "abc" into NaN and "false" into true, losing what the user typed.
 */
function coerce(field: ConfigField, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  const t = field.designType;
  if (field.nested) return NOT_CONVERTIBLE;
  if (t === Number) return toNumber(value);
  if (t === Boolean) return toBoolean(value);
  if (t === String) return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : NOT_CONVERTIBLE;
  if (t === Array) {
    // `--vision_layers 3,4,6,3`, a repeated flag, or one value for a list.
    const items: unknown[] = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [value];
    const kind = elementKind(field);
    const converted = items.map((x) => (kind === 'int' || kind === 'number' ? toNumber(x) : kind === 'boolean' ? toBoolean(x) : x));
    return converted.includes(NOT_CONVERTIBLE) ? NOT_CONVERTIBLE : converted;
  }
  return value;
}

function failure(field: ConfigField, leaf: Leaf | undefined, id: string, value: unknown, what?: string): string {
  const origin = leaf ? `from ${leaf.source}` : value === undefined ? 'not set' : 'the default';
  return `\`${leaf?.display ?? id}\` ${what ?? `must be ${describeExpected(field)}`}, got ${showValue(leaf ? leaf.value : value)} (${origin})`;
}

/** Builds one level with class-transformer (nested groups built recursively), recording type errors. */
function build<T extends object>(cls: ConfigClass<T>, leaves: Map<string, Leaf>, path: string[], errors: string[]): T {
  const plain: Record<string, unknown> = {};
  const groups: [string, object][] = [];
  for (const field of configFields(cls)) {
    const id = [...path, field.key].join('.');
    const leaf = leaves.get(id);
    if (field.nested && leaf === undefined) {
      // Only build a group that was given keys; otherwise keep the class default (possibly undefined).
      if ([...leaves.keys()].some((k) => k.startsWith(`${id}.`))) groups.push([field.key, build(field.nested, leaves, [...path, field.key], errors)]);
      continue;
    }
    if (leaf === undefined) continue;
    const value = coerce(field, leaf.value);
    if (value === NOT_CONVERTIBLE) errors.push(failure(field, leaf, id, leaf.value));
    else plain[field.key] = value;
  }
  const instance = plainToInstance(cls, plain, { exposeDefaultValues: true });
  for (const [key, group] of groups) (instance as Record<string, unknown>)[key] = group;
  return instance;
}

/** Validates one level with class-validator, then each nested group, phrasing every failure. */
function validate(cls: ConfigClass, instance: object, leaves: Map<string, Leaf>, path: string[], errors: string[]): void {
  const fields = configFields(cls);
  for (const err of validateSync(instance, { forbidUnknownValues: true })) {
    // Errors inside nested groups (err.children) are reported by the recursive call below, once.
    if (err.constraints === undefined) continue;
    const field = fields.find((f) => f.key === err.property);
    const id = [...path, err.property].join('.');
    if (field === undefined) {
      errors.push(`\`${id}\`: ${Object.values(err.constraints).join('; ')}`);
      continue;
    }
    const phrased = Object.keys(err.constraints).every((k) => PHRASED_CONSTRAINTS.has(k));
    // class-validator's own messages start with the property name ("x must be a URL address").
    const own = Object.values(err.constraints).map((m) => m.replace(new RegExp(`^(each value in )?${err.property} `), '')).join('; ');
    errors.push(failure(field, leaves.get(id), id, err.value, phrased ? undefined : own));
  }
  for (const field of fields) {
    const value = (instance as Record<string, unknown>)[field.key];
    if (field.nested && value instanceof field.nested) validate(field.nested, value, leaves, [...path, field.key], errors);
  }
}

/**
 * Merges configuration layers (later wins, key by key, nested groups merged) over the
 * class defaults, converts and validates them.
 * @throws MisconfigurationError listing every unknown key (with the allowed keys) and every
 *   ill-typed or out-of-range value (with key, expected type, value and source).
 */
export function parseConfigLayers<T extends object>(cls: ConfigClass<T>, layers: readonly ConfigLayer[]): T {
  const leaves = new Map<string, Leaf>();
  const errors: string[] = [];
  for (const layer of layers) collect(cls, layer.values, layer.source, [], [], leaves, errors);
  const instance = build(cls, leaves, [], errors);
  validate(cls, instance, leaves, [], errors);
  if (errors.length === 1) throw new MisconfigurationError(errors[0]!);
  if (errors.length > 1) throw new MisconfigurationError(`${errors.length} configuration errors:\n  - ${errors.join('\n  - ')}`);
  return instance;
}

/**
 * Fills and validates a config class from one plain object.
 * @param source where `plain` came from, for messages: a file path or `command line`.
 * @throws MisconfigurationError as `parseConfigLayers`.
 */
export function parseConfig<T extends object>(cls: ConfigClass<T>, plain: unknown, options: { source: string }): T {
  return parseConfigLayers(cls, [{ values: plain, source: options.source }]);
}

/** Dotted names of the boolean fields of a config class (they never take a value on the command line). */
export function booleanFlagsOf(cls: ConfigClass, prefix = ''): string[] {
  return configFields(cls).flatMap((f) =>
    f.nested ? booleanFlagsOf(f.nested, `${prefix}${f.key}.`) : f.designType === Boolean || f.validators.some((v) => v.name === 'isBoolean' && !v.each) ? [`${prefix}${f.key}`] : [],
  );
}

/** Options of `resolveConfig`. */
export interface ResolveOptions extends CliOptions {
  /** The flag naming config files (repeatable, later files win); default `config`. */
  configFlag?: string;
  /** Maps each `--config` value to a file path (named recipes such as `llip_b16`); default: as given. */
  resolveConfigName?: (value: string) => string;
}

/** The result of `resolveConfig`: either `--help` was asked for, or the validated config. */
export type ResolvedConfig<T> = { help: true } | { help: false; config: T };

/**
 * The whole CLI path: parses `argv`, loads every `--config` file, and merges defaults <
 * files < flags. Boolean fields of `cls` are boolean flags automatically.
 * @returns `{help: true}` when `--help`/`-h` is present (before any validation, so help
 *   always prints), else the validated config.
 * @throws MisconfigurationError for unreadable files, unknown keys and ill-typed values.
 */
export function resolveConfig<T extends object>(cls: ConfigClass<T>, argv: readonly string[], options: ResolveOptions = {}): ResolvedConfig<T> {
  const configFlag = options.configFlag ?? 'config';
  const flags = parseCliFlags(argv, { booleanFlags: [...(options.booleanFlags ?? []), 'help', ...booleanFlagsOf(cls)] });
  if (flags['help'] === true) return { help: true };
  delete flags['help'];
  const files = flags[configFlag];
  delete flags[configFlag];
  const paths = files === undefined ? [] : Array.isArray(files) ? files : [files];
  for (const p of paths) {
    if (typeof p !== 'string') throw new MisconfigurationError(`\`--${configFlag}\` must be followed by a file path (.json, .yaml or .yml), got ${showValue(p)}`);
  }
  const resolve = options.resolveConfigName ?? ((p: string) => p);
  const layers: ConfigLayer[] = (paths as string[]).map((p) => resolve(p)).map((p) => ({ values: loadConfigFile(p), source: p }));
  layers.push({ values: flags, source: COMMAND_LINE });
  return { help: false, config: parseConfigLayers(cls, layers) };
}
