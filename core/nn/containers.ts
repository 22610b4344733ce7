import { MisconfigurationError, showValue } from '../errors.js';
import { tf, type Tensor } from '../tf.js';
import { Module, type TensorModule } from './module.js';

/**
 * Chains tensor modules (PyTorch's `nn.Sequential`). Children are named "0", "1", ... when
 * given positionally, or by the given names when built from `[name, module]` pairs, like
 * PyTorch's `OrderedDict` form (OpenAI CLIP's `mlp.c_fc` / `mlp.c_proj`).
 *
 * @example
 * new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 2));           // 0.weight, 2.weight
 * new Sequential([['c_fc', new Linear(4, 16)], ['gelu', new QuickGELU()], ['c_proj', new Linear(16, 4)]]);
 */
export class Sequential extends Module implements TensorModule {
  private readonly layers: TensorModule[] = [];

  constructor(...modules: TensorModule[]);
  constructor(named: ReadonlyArray<readonly [string, TensorModule]>);
  constructor(...args: TensorModule[] | [ReadonlyArray<readonly [string, TensorModule]>]) {
    super();
    const first = args[0];
    if (args.length === 1 && Array.isArray(first)) {
      for (const [name, m] of first as ReadonlyArray<readonly [string, TensorModule]>) this.add(name, m);
    } else {
      for (const m of args as TensorModule[]) this.append(m);
    }
  }

  /** Appends a module named by its position. */
  append(module: TensorModule): this {
    return this.add(String(this.layers.length), module);
  }

  /** Appends a module under an explicit name (PyTorch's `add_module`). */
  add(name: string, module: TensorModule): this {
    if (!(module instanceof Module)) {
      throw new MisconfigurationError(`Sequential child \`${name}\` must be a Module, got ${showValue(module)}`);
    }
    this.registerModule(name, module);
    this.layers.push(module);
    return this;
  }

  /** The i-th module (negative counts from the end). */
  get(i: number): TensorModule {
    const m = this.layers[i < 0 ? i + this.layers.length : i];
    if (!m) throw new RangeError(`Sequential index ${i} out of range for ${this.layers.length} modules`);
    return m;
  }

  get length(): number {
    return this.layers.length;
  }

  [Symbol.iterator](): Iterator<TensorModule> {
    return this.layers[Symbol.iterator]();
  }

  /** Runs the modules in order; intermediate activations are freed as it goes. */
  forward(x: Tensor): Tensor {
    if (this.layers.length === 0) return x;
    return tf.tidy(() => this.layers.reduce((h, m) => m.forward(h), x));
  }
}

/**
 * Holds submodules in a list, named "0", "1", ... (PyTorch's `nn.ModuleList`); it has no
 * forward of its own. `M` lets typed lists keep the element type (`ModuleList<Block>`).
 */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Appends a module named by its position. */
  append(module: M): this {
    if (!(module instanceof Module)) {
      throw new MisconfigurationError(`ModuleList item ${this.items.length} must be a Module, got ${showValue(module)}`);
    }
    this.registerModule(String(this.items.length), module);
    this.items.push(module);
    return this;
  }

  /** Appends every module of `modules`. */
  extend(modules: Iterable<M>): this {
    for (const m of modules) this.append(m);
    return this;
  }

  /** The i-th module (negative counts from the end). */
  get(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range for ${this.items.length} modules`);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
