import { tf, type Tensor, type Variable } from '../tf.js';

/**
 * A trainable tensor: a `tf.Variable` plus PyTorch's bookkeeping. `grad` holds the
 * gradient accumulated by backward passes until the optimizer consumes it and
 * `zeroGrad()` clears it (so accumulation over k batches is a sum, as in PyTorch).
 */
export class Parameter {
  readonly variable: Variable;
  grad: Tensor | null = null;
  private _requiresGrad: boolean;

  constructor(value: Tensor, requiresGrad = true) {
    // tfjs variable names are global; make them unique and never clash with user names.
    this.variable = tf.variable(value, requiresGrad, `lc_param_${Parameter.counter++}`);
    this._requiresGrad = requiresGrad;
  }

  private static counter = 0;

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }

  /** Freezing also clears `trainable`, so tfjs records no gradient for it. */
  set requiresGrad(flag: boolean) {
    this._requiresGrad = flag;
    this.variable.trainable = flag;
  }

  get shape(): number[] {
    return this.variable.shape;
  }

  get ndim(): number {
    return this.variable.rank;
  }

  get size(): number {
    return this.variable.size;
  }

  /** Adds `g` to `grad` (takes ownership of `g`). */
  accumulateGrad(g: Tensor): void {
    if (this.grad === null) {
      this.grad = g;
    } else {
      const sum = tf.add(this.grad, g);
      this.grad.dispose();
      g.dispose();
      this.grad = sum;
    }
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  dispose(): void {
    this.zeroGrad();
    this.variable.dispose();
  }
}

/** A state dict: PyTorch names (`encoder.layers.0.fc.weight`) to tensors. */
export type StateDict = Record<string, Tensor>;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Missing or unexpected keys are errors (default true), as in PyTorch. */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did not match (reported when `strict: false`). */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** Raised by `loadStateDict` with every missing, unexpected and mis-shaped key listed. */
export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly shapeMismatches: string[],
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

/**
 * Base class of every layer and model, mirroring `torch.nn.Module`: parameters, buffers
 * and submodules are registered by name, and their dotted paths are the state-dict keys,
 * so weights interchange with PyTorch by name. Buffers (BatchNorm running statistics) are
 * non-trainable variables, updated in place with `assign`.
 *
 * Subclasses register in their constructor and implement `forward` with the signature
 * they need; modules that map one tensor to one tensor implement {@link TensorModule}.
 */
export abstract class Module {
  training = true;
  private readonly _parameters = new Map<string, Parameter>();
  private readonly _buffers = new Map<string, Variable>();
  private readonly _modules = new Map<string, Module>();

  /** Registers a trainable parameter initialised with `value` (ownership is taken). */
  protected registerParameter(name: string, value: Tensor, requiresGrad = true): Parameter {
    this.checkName(name);
    const p = new Parameter(value, requiresGrad);
    value.dispose();
    this._parameters.set(name, p);
    return p;
  }

  /** Registers a buffer: saved in the state dict, never trained. */
  protected registerBuffer(name: string, value: Tensor): Variable {
    this.checkName(name);
    const v = tf.variable(value, false, `lc_buffer_${Module.bufferCounter++}`);
    value.dispose();
    this._buffers.set(name, v);
    return v;
  }

  private static bufferCounter = 0;

  /** Registers a submodule; its names are prefixed with `name.`. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this._modules.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name.includes('.') || name === '') throw new Error(`Module attribute name must be non-empty and contain no '.', got "${name}"`);
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new Error(`Module already has an attribute named "${name}"`);
    }
  }

  /** Direct submodules, in registration order. */
  namedChildren(): Array<[string, Module]> {
    return [...this._modules.entries()];
  }

  /** This module and every descendant, with dotted paths ('' for this one). */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [name, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /**
   * Every parameter with its PyTorch-style dotted name, in registration order. A parameter
   * reachable by several paths (a submodule registered twice: weight tying) is listed once
   * unless `removeDuplicate` is false, as PyTorch's `named_parameters`; otherwise optimizers
   * and `backward` would see it twice and double its gradient.
   */
  namedParameters(prefix = '', removeDuplicate = true): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    const seen = new Set<Parameter>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m._parameters) {
        if (removeDuplicate && seen.has(p)) continue;
        seen.add(p);
        out.push([path ? `${path}.${name}` : name, p]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer with its dotted name (each once unless `removeDuplicate` is false). */
  namedBuffers(prefix = '', removeDuplicate = true): Array<[string, Variable]> {
    const out: Array<[string, Variable]> = [];
    const seen = new Set<Variable>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m._buffers) {
        if (removeDuplicate && seen.has(b)) continue;
        seen.add(b);
        out.push([path ? `${path}.${name}` : name, b]);
      }
    }
    return out;
  }

  /** Sets training mode here and below (Dropout, BatchNorm behave differently). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes or unfreezes every parameter (PyTorch's `requires_grad_`). */
  requiresGrad(flag: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /** Parameters and buffers by name. The tensors are the live variables: do not dispose them. */
  stateDict(): StateDict {
    const sd: StateDict = {};
    // Every path, shared tensors included, as PyTorch's state_dict (tied weights load by either name).
    for (const [name, p] of this.namedParameters('', false)) sd[name] = p.variable;
    for (const [name, b] of this.namedBuffers('', false)) sd[name] = b;
    return sd;
  }

  /** Total number of parameter elements (trainable only when `trainableOnly`). */
  numParameters(trainableOnly = false): number {
    return this.parameters().reduce((n, p) => n + (trainableOnly && !p.requiresGrad ? 0 : p.size), 0);
  }

  /**
   * Copies values from `sd` into this module's parameters and buffers by name.
   * @throws StateDictError listing missing, unexpected (when strict) and mis-shaped keys.
   */
  loadStateDict(sd: StateDict, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const own = new Map<string, Variable>();
    for (const [name, p] of this.namedParameters('', false)) own.set(name, p.variable);
    for (const [name, b] of this.namedBuffers('', false)) own.set(name, b);
    const missingKeys = [...own.keys()].filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !own.has(k));
    const shapeMismatches: string[] = [];
    for (const [name, v] of own) {
      const t = sd[name];
      if (t && !sameShape(t.shape, v.shape)) {
        shapeMismatches.push(`${name}: checkpoint [${t.shape.join(', ')}] vs model [${v.shape.join(', ')}]`);
      }
    }
    if (shapeMismatches.length || (strict && (missingKeys.length || unexpectedKeys.length))) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`Missing key(s): ${formatKeys(missingKeys)}.`);
      if (unexpectedKeys.length) parts.push(`Unexpected key(s): ${formatKeys(unexpectedKeys)}.`);
      if (shapeMismatches.length) parts.push(`Size mismatch: ${formatKeys(shapeMismatches)}.`);
      throw new StateDictError(
        `Error(s) in loading state dict for ${this.constructor.name}: ${parts.join(' ')}`,
        missingKeys,
        unexpectedKeys,
        shapeMismatches,
      );
    }
    for (const [name, v] of own) {
      const t = sd[name];
      // Assigning a variable its own data (`m.loadStateDict(m.stateDict())`) would make tfjs
      // release the data before re-referencing it, so that case is skipped: it is a no-op.
      if (!t || t.dataId === v.dataId) continue;
      // The tidy frees the cast copy; the variable keeps its own reference to the data.
      tf.tidy(() => v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype)));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Releases every variable (and accumulated gradient) of this module tree. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

/** A module mapping one tensor to one tensor (what `Sequential` chains). */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function formatKeys(keys: string[], max = 20): string {
  const shown = keys.slice(0, max).map((k) => `"${k}"`).join(', ');
  return keys.length > max ? `${shown} and ${keys.length - max} more` : shown;
}
