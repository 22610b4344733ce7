/**
 * What a config class declares, read back from its decorators: field names, design types
 * (from `emitDecoratorMetadata`), class-validator constraints, `@Describe` texts and
 * defaults. `config.ts` uses it to check keys and types; `renderConfigHelp` turns it into
 * `--help` text. Kept apart so that the parsing code stays readable.
 */
import 'reflect-metadata';
import { getMetadataStorage } from 'class-validator';
import { showValue } from './errors.js';

/** A config class: constructible without arguments, fields initialised to their defaults. */
export type ConfigClass<T extends object = object> = new () => T;

/** The validator metadata `configSchema` reads (a subset of class-validator's `ValidationMetadata`). */
interface ValidatorInfo {
  propertyName: string;
  type: string;
  name?: string;
  constraints: unknown[];
  each: boolean;
}

/** One field of a config class. */
export interface ConfigField {
  /** Property name as declared. */
  readonly key: string;
  /** The `design:type` TypeScript emitted (`Number`, `String`, `Boolean`, `Array`, `Object`, a class), if any. */
  readonly designType: unknown;
  /** The config class of a nested group (`--ddp.rank`), when the field's type is one. */
  readonly nested: ConfigClass | undefined;
  readonly description: string | undefined;
  readonly defaultValue: unknown;
  readonly validators: readonly ValidatorInfo[];
}

const descriptions = new WeakMap<object, Map<string, string>>();

/**
 * Attaches a one-line description to a config field, shown by `renderConfigHelp`. It also
 * makes TypeScript emit the field's design type, which is how string flags get converted
 * to numbers and booleans: give every config field at least this decorator.
 * @example
 * class TrainCfg { @Describe('Images per step') @IsInt() @Min(1) batch_size = 8; }
 */
export function Describe(description: string): PropertyDecorator {
  return (target: object, key: string | symbol): void => {
    if (typeof key !== 'string') return;
    if (!descriptions.has(target)) descriptions.set(target, new Map());
    descriptions.get(target)!.set(key, description);
  };
}

function describedKeys(proto: object | null): Map<string, string> {
  // Walk base classes first so subclasses override their descriptions.
  if (proto === null || proto === Object.prototype) return new Map();
  const inherited = describedKeys(Object.getPrototypeOf(proto) as object | null);
  for (const [k, v] of descriptions.get(proto) ?? []) inherited.set(k, v);
  return inherited;
}

/**
 * The runtime type of a field. `design:type` is only emitted for annotated fields (`lr = 1e-3`
 * may have none, or `Object` under tsc), so fall back to the default's type, then to
 * the validators (`@IsInt()` → Number).
 */
function fieldType(designType: unknown, defaultValue: unknown, validators: readonly ValidatorInfo[]): unknown {
  if (typeof designType === 'function' && designType !== Object) return designType;
  if (typeof defaultValue === 'number') return Number;
  if (typeof defaultValue === 'boolean') return Boolean;
  if (typeof defaultValue === 'string') return String;
  if (Array.isArray(defaultValue)) return Array;
  if (typeof defaultValue === 'object' && defaultValue !== null && defaultValue.constructor !== Object) return defaultValue.constructor;
  const byValidator: Record<string, unknown> = { isInt: Number, isNumber: Number, isBoolean: Boolean, isString: String, isArray: Array };
  for (const v of validators) {
    if (v.each) return Array;
    const t = byValidator[v.name ?? ''];
    if (t !== undefined) return t;
  }
  return designType;
}

const PRIMITIVE_TYPES: readonly unknown[] = [Number, String, Boolean, Array, Object, Date, Function, Map, Set, Promise];
const schemaCache = new WeakMap<ConfigClass, ConfigField[]>();

/**
 * The fields of a config class: initialised fields in declaration order, then fields known
 * only from decorators. A field without initialiser and without decorator is invisible
 * (TypeScript leaves no trace of it), so config classes should decorate every field.
 */
export function configFields(cls: ConfigClass): readonly ConfigField[] {
  const cached = schemaCache.get(cls);
  if (cached) return cached;
  const defaults = new cls() as Record<string, unknown>;
  const validators = getMetadataStorage().getTargetValidationMetadatas(cls, '', false, false) as ValidatorInfo[];
  const described = describedKeys(cls.prototype as object);
  const keys = [...new Set([...Object.keys(defaults), ...validators.map((v) => v.propertyName), ...described.keys()])];
  const fields = keys.map((key): ConfigField => {
    const own = validators.filter((v) => v.propertyName === key);
    const designType = fieldType(Reflect.getMetadata('design:type', cls.prototype as object, key), defaults[key], own);
    const nested = typeof designType === 'function' && !PRIMITIVE_TYPES.includes(designType) ? (designType as ConfigClass) : undefined;
    return {
      key,
      designType,
      nested,
      description: described.get(key),
      defaultValue: defaults[key],
      validators: own,
    };
  });
  schemaCache.set(cls, fields);
  return fields;
}

/** Key spelling tolerance: `--batch-size`, `--batch_size` and `--batchSize` all name `batch_size`. */
export function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

/** The field `key` names: an exact match first, then the unique match ignoring case, `-` and `_`. */
export function findField(fields: readonly ConfigField[], key: string): ConfigField | undefined {
  const exact = fields.find((f) => f.key === key);
  if (exact) return exact;
  const loose = fields.filter((f) => normalizeKey(f.key) === normalizeKey(key));
  return loose.length === 1 ? loose[0] : undefined;
}

/** The element kind a list field holds, from `each: true` validators (`@IsInt({}, { each: true })`). */
export function elementKind(field: ConfigField): 'int' | 'number' | 'boolean' | 'string' | undefined {
  for (const v of field.validators) {
    if (!v.each) continue;
    if (v.name === 'isInt') return 'int';
    if (v.name === 'isNumber' || v.name === 'min' || v.name === 'max' || v.name === 'isPositive') return 'number';
    if (v.name === 'isBoolean') return 'boolean';
    if (v.name === 'isString') return 'string';
  }
  return undefined;
}

/** Constraint names `describeExpected` can phrase; other failures fall back to class-validator's own message. */
export const PHRASED_CONSTRAINTS: ReadonlySet<string> = new Set([
  'isInt', 'isNumber', 'isBoolean', 'isString', 'isIn', 'isEnum', 'isArray', 'min', 'max', 'isPositive', 'isNegative', 'isDefined', 'isNotEmpty',
]);

const BASES: Record<string, [string, string]> = {
  isInt: ['an integer', 'integers'],
  isNumber: ['a number', 'numbers'],
  isBoolean: ['a boolean (true/false)', 'booleans'],
  isString: ['a string', 'strings'],
  isArray: ['a list', 'lists'],
};

/**
 * What a field accepts, as a phrase that completes "`key` must be ...": "an integer ≥ 1",
 * "a number ≥ 0 and ≤ 1", "one of "auto", "cpu", "gpu"", "a list of integers".
 */
export function describeExpected(field: ConfigField): string {
  let base: string | undefined;
  let each = false;
  const bounds: string[] = [];
  for (const v of field.validators) {
    if (v.type !== 'customValidation') continue;
    each ||= v.each;
    const name = v.name ?? '';
    if (name in BASES && v.each) base = `a list of ${BASES[name]![1]}`;
    else if (name in BASES && (base === undefined || base === BASES['isArray']![0])) base = BASES[name]![0];
    else if (name === 'isIn') base = `one of ${(v.constraints[0] as unknown[]).map(showValue).join(', ')}`;
    else if (name === 'isEnum') base = `one of ${(v.constraints[1] as unknown[]).map(showValue).join(', ')}`;
    else if (name === 'min') bounds.push(`≥ ${String(v.constraints[0])}`);
    else if (name === 'max') bounds.push(`≤ ${String(v.constraints[0])}`);
    else if (name === 'isPositive') bounds.push('> 0');
    else if (name === 'isNegative') bounds.push('< 0');
  }
  if (base === undefined) {
    const fromType: [unknown, string][] = [[Number, 'a number'], [Boolean, 'a boolean (true/false)'], [String, 'a string'], [Array, 'a list']];
    base = field.nested ? `a mapping of ${configFields(field.nested).map((f) => f.key).join(', ')}` : (fromType.find(([t]) => t === field.designType)?.[1] ?? 'a valid value');
    if (each && base === 'a list') base = 'a list of numbers';
  }
  return bounds.length > 0 ? `${base} ${bounds.join(' and ')}` : base;
}

/** Placeholder shown after an option in help text: `<int>`, `<number>`, `{a,b}`, nothing for booleans. */
function placeholder(field: ConfigField): string {
  const isIn = field.validators.find((v) => v.name === 'isIn' || v.name === 'isEnum');
  if (isIn) return ` {${(isIn.name === 'isIn' ? (isIn.constraints[0] as unknown[]) : (isIn.constraints[1] as unknown[])).join(',')}}`;
  if (field.validators.some((v) => v.name === 'isBoolean') || field.designType === Boolean) return '';
  if (field.validators.some((v) => v.name === 'isInt' && !v.each)) return ' <int>';
  if (field.designType === Number) return ' <number>';
  if (field.designType === Array) return ' <list>';
  return ' <value>';
}

/** Options accepted by `renderConfigHelp`. */
export interface HelpOptions {
  /** First line, e.g. `Usage: node train.js [options]`. */
  usage?: string;
  /** Extra options listed first (`--config`, `--help`), as `[flag, description]`. */
  extra?: readonly (readonly [string, string])[];
}

function optionLines(cls: ConfigClass, prefix: string): [string, string][] {
  const rows: [string, string][] = [];
  for (const field of configFields(cls)) {
    if (field.nested) {
      rows.push(...optionLines(field.nested, `${prefix}${field.key}.`));
      continue;
    }
    const notes = [describeExpected(field)];
    if (field.defaultValue !== undefined) notes.push(`default: ${showValue(field.defaultValue)}`);
    const text = [field.description, `[${notes.join('; ')}]`].filter(Boolean).join(' ');
    rows.push([`--${prefix}${field.key}${placeholder(field)}`, text]);
  }
  return rows;
}

/**
 * Renders `--help` text from a config class: one line per option (nested groups as
 * `--group.key`) with its placeholder, `@Describe` text, accepted values and default.
 */
export function renderConfigHelp(cls: ConfigClass, options: HelpOptions = {}): string {
  const rows: [string, string][] = [...(options.extra ?? []).map(([a, b]): [string, string] => [a, b]), ...optionLines(cls, '')];
  const width = Math.min(36, Math.max(...rows.map(([flag]) => flag.length)) + 2);
  const lines = rows.map(([flag, text]) => (flag.length + 2 > width ? `  ${flag}\n  ${' '.repeat(width)}${text}` : `  ${flag.padEnd(width)}${text}`));
  return [...(options.usage ? [options.usage, ''] : []), 'Options:', ...lines].join('\n') + '\n';
}
