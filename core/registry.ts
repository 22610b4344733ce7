import 'reflect-metadata';
import { container } from 'tsyringe';
import { MisconfigurationError } from './errors.js';

/**
 * The name registry behind `--model mlp`, `--strategy ddp`, `--logger tensorboard`...
 * Entries live in the tsyringe root container under the token `<kind>:<name>`, so an
 * application can also override one with `container.register(...)` before resolving.
 */
export interface RegistryEntry<T = unknown> {
  readonly kind: string;
  readonly name: string;
  readonly description: string;
  /** Builds a new instance; `options` are the entry's own typed options. */
  readonly factory: (options?: Record<string, unknown>) => T;
}

const names = new Map<string, Set<string>>();

function token(kind: string, name: string): string {
  return `${kind}:${name}`;
}

/**
 * Registers `factory` under `kind`/`name`. Registering the same name twice replaces the
 * entry (the last import wins), so user code can override a built-in.
 */
export function register<T>(
  kind: string,
  name: string,
  factory: (options?: Record<string, unknown>) => T,
  meta: { description?: string } = {},
): void {
  const entry: RegistryEntry<T> = { kind, name, description: meta.description ?? '', factory };
  container.register(token(kind, name), { useValue: entry });
  if (!names.has(kind)) names.set(kind, new Set());
  names.get(kind)!.add(name);
}

/** Whether `kind`/`name` is registered. */
export function isRegistered(kind: string, name: string): boolean {
  return container.isRegistered(token(kind, name));
}

/** Natural sort ("ViT-B/16" before "ViT-B/32", "RN50" before "RN101"), as open_clip's `_natural_key`. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' });
}

/** Registered names of one kind, naturally sorted. */
export function listRegistered(kind: string): string[] {
  return [...(names.get(kind) ?? [])].sort(naturalCompare);
}

/**
 * The entry of `kind`/`name`.
 * @throws MisconfigurationError naming the flag and listing the available names.
 */
export function getEntry<T>(kind: string, name: string, flag = `--${kind}`): RegistryEntry<T> {
  if (!isRegistered(kind, name)) {
    const available = listRegistered(kind);
    throw new MisconfigurationError(
      `Unknown ${kind} name \`${flag}=${name}\`. Available: ${available.length ? available.join(', ') : '(none registered)'}.`,
    );
  }
  return container.resolve<RegistryEntry<T>>(token(kind, name));
}

/** Builds a new instance of the registered `kind`/`name`. */
export function create<T>(kind: string, name: string, options?: Record<string, unknown>, flag?: string): T {
  return getEntry<T>(kind, name, flag).factory(options);
}

/**
 * Class decorator: registers the class under `kind`/`name` with a factory that calls its
 * constructor with the options object.
 * @example
 * ```ts
 * @registerClass('model', 'mlp', { description: 'two-layer perceptron' })
 * class Mlp extends LightningModule { ... }
 * ```
 */
export function registerClass(kind: string, name: string, meta: { description?: string } = {}) {
  return function <C extends new (options: never) => unknown>(cls: C): C {
    register(kind, name, (options) => new cls(options as never), meta);
    return cls;
  };
}
