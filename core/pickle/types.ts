/**
 * The value model of the restricted unpickler (unpickler.ts): what Python objects become
 * in JavaScript, the allowlist hook, and the errors.
 */

/** Base class of objects built by allowlisted callables (tensors, storages, numpy arrays). */
export abstract class PickleObject {
  /**
   * BUILD's `__setstate__`: objects that accept a state override this (numpy's ndarray and
   * dtype); the default refuses, so BUILD can never reach anything not meant for it.
   */
  setState(_state: PickleValue): void {
    throw new Error(`BUILD on a ${this.constructor.name}, which takes no state`);
  }
}

/** A Python tuple (kept apart from lists, which are mutable and can be appended to). */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** Keys a dict may have: the hashable scalars (tuples and objects compare by identity). */
export type PickleKey = string | number | bigint | boolean | null | PickleTuple;

/** A Python dict or `collections.OrderedDict`, in insertion order. */
export class PickleDict {
  readonly entries = new Map<PickleKey, PickleValue>();
  /** Attributes set by BUILD (an OrderedDict state dict's `_metadata`), kept but unused. */
  state: PickleValue = null;
}

/** Any value the restricted unpickler produces. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleGlobal
  | PickleObject;

/** An allowlisted class or function, resolved from a `module.name` global. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    /** Applies it to positional arguments (REDUCE, NEWOBJ, OBJ); throws when it must not be called. */
    readonly call: (args: readonly PickleValue[]) => PickleValue,
  ) {}

  /** `module.name`, as the pickle wrote it. */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The hooks that give a pickle meaning; the unpickler itself knows no globals. */
export interface UnpicklerHooks {
  /** Resolves a global; must throw {@link UnsafePickleError} for anything not allowed. */
  findGlobal(module: string, name: string): PickleGlobal;
  /** Resolves a persistent id (torch's storage references); throws when there is no such hook. */
  persistentLoad?(pid: PickleValue): PickleValue;
}

/** A pickle that names a global outside the allowlist. Nothing was called when this is thrown. */
export class UnsafePickleError extends Error {
  constructor(
    readonly source: string,
    /** The refused global, `module.name` as written in the pickle. */
    readonly global: string,
    allowed: readonly string[],
    allowedWhat = 'tensor-rebuilding functions and containers',
    advice = 'Convert the file to safetensors in a trusted environment if it is legitimate.',
  ) {
    super(
      `Refusing to load ${source}: its pickle references the global \`${global}\`, which is not one of the ` +
        `${allowed.length} allowlisted ${allowedWhat} (${allowed.join(', ')}). ` +
        `Nothing was executed. ${advice}`,
    );
    this.name = 'UnsafePickleError';
  }
}

/** A pickle stream that is malformed or uses an opcode this unpickler does not implement. */
export class PickleFormatError extends Error {
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`Cannot unpickle ${source}: ${detail}`);
    this.name = 'PickleFormatError';
  }
}
