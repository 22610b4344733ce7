import { tf, type Tensor, type Variable } from '../tf.js';
import { MisconfigurationError, showValue } from '../errors.js';
import type { Parameter } from '../nn/module.js';

/** Hyperparameters every optimizer has; each group may override the defaults. */
export interface BaseHyperparams {
  /** Learning rate (LR schedulers rewrite it on every group). */
  lr: number;
  /** Weight decay (L2 or decoupled, depending on the optimizer). */
  weightDecay: number;
}

/**
 * A parameter group as PyTorch has them: the parameters plus the full set of
 * hyperparameters (defaults merged with this group's overrides). `initialLr` is set by
 * the first LR scheduler attached, as `initial_lr` is in PyTorch.
 */
export type ParamGroup<H extends BaseHyperparams = BaseHyperparams> = H & {
  params: Parameter[];
  initialLr?: number;
};

/** What a constructor accepts per group: the parameters and any overrides of the defaults. */
export type ParamGroupInput<H extends BaseHyperparams = BaseHyperparams> = { params: Parameter[] } & Partial<H>;

/** Per-parameter optimizer state: a step count and named tensors (`exp_avg`, `momentum_buffer`). */
export interface ParamState {
  /** Number of updates applied to this parameter (bias correction reads it). */
  step: number;
  /** Non-trainable variables updated in place with `assign`. */
  tensors: Map<string, Variable>;
}

/** The JSON half of {@link OptimizerStateDict}. */
export interface OptimizerStateJson {
  /** Step counts keyed by global parameter index (only parameters that have been updated). */
  state: Record<string, { step: number }>;
  /**
   * Each group's hyperparameters (current `lr` and `initialLr` included). `params` holds
   * the global indices of the group's parameters, as PyTorch's state dict does, never values.
   */
  paramGroups: Array<Record<string, unknown> & { params: number[] }>;
}

/**
 * An optimizer checkpoint: state tensors under `state.<globalParamIndex>.<name>`
 * (PyTorch's names, e.g. `state.3.exp_avg`) and everything else as JSON. Global indices
 * count parameters through the groups in order.
 */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  json: OptimizerStateJson;
}

/**
 * Base class of lightclip's optimizers, shaped like `torch.optim.Optimizer`: parameter
 * groups with per-group hyperparameters, `step()`, `zeroGrad()` and a state dict that
 * resumes bit-identically. Subclasses implement {@link Optimizer.updateParam}.
 */
export abstract class Optimizer<H extends BaseHyperparams = BaseHyperparams> {
  /** The groups, in order; schedulers and users may edit the hyperparameters in place. */
  readonly paramGroups: Array<ParamGroup<H>> = [];
  /** Defaults applied to every group that does not override them. */
  readonly defaults: Readonly<H>;
  /** State keyed by parameter object, so it follows a parameter if groups are reordered. */
  protected readonly state = new Map<Parameter, ParamState>();

  /**
   * @param params A flat list of parameters (one group) or a list of groups with overrides.
   * @param defaults Hyperparameters for groups that do not set them.
   * @throws MisconfigurationError on an empty parameter list, a parameter listed twice, or
   *   an invalid hyperparameter in any group.
   */
  constructor(params: readonly Parameter[] | ReadonlyArray<ParamGroupInput<H>>, defaults: H) {
    this.defaults = copyArrays(defaults);
    if (params.length === 0) {
      throw new MisconfigurationError('`params` must contain at least one parameter or parameter group, got an empty list');
    }
    const groups = isGroupList(params) ? params : [{ params: [...params] } as ParamGroupInput<H>];
    for (const g of groups) this.addParamGroup(g);
  }

  /**
   * Adds a group (e.g. when unfreezing a tower mid-training), filling missing
   * hyperparameters from the defaults.
   * @throws MisconfigurationError if a parameter already belongs to a group or a value is invalid.
   */
  addParamGroup(input: ParamGroupInput<H>): void {
    if (!Array.isArray(input.params)) {
      throw new MisconfigurationError(`\`params\` of a parameter group must be an array of Parameters, got ${showValue(input.params)}`);
    }
    const seen = new Set(this.allParams());
    for (const p of input.params) {
      if (seen.has(p)) {
        throw new MisconfigurationError('a parameter appears in more than one parameter group (or twice in one); each parameter must be listed once');
      }
      seen.add(p);
    }
    // Arrays (betas) are copied so that editing one group never changes another or the defaults.
    const group = copyArrays(this.defaults) as ParamGroup<H>;
    for (const [key, value] of Object.entries(input)) {
      // An explicit `undefined` means "use the default", as a missing key does.
      if (value !== undefined) (group as unknown as Record<string, unknown>)[key] = Array.isArray(value) ? [...value] : value;
    }
    group.params = [...input.params];
    this.validateGroup(group, this.paramGroups.length);
    this.paramGroups.push(group);
  }

  /**
   * Applies one update to every parameter that requires grad and has a gradient; frozen
   * parameters and those without a gradient (unused in this step) are left untouched, and
   * their step count does not advance, as in PyTorch.
   */
  step(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const grad = p.grad;
        if (grad === null || !p.requiresGrad) continue;
        let st = this.state.get(p);
        if (st === undefined) {
          st = { step: 0, tensors: new Map() };
          this.state.set(p, st);
        }
        st.step += 1;
        const state = st;
        // Every intermediate dies with the tidy; variables keep what they were assigned.
        tf.tidy(() => this.updateParam(p, grad, group, state));
      }
    }
  }

  /** Clears every gradient (PyTorch's `zero_grad(set_to_none=True)`). */
  zeroGrad(): void {
    for (const p of this.allParams()) p.zeroGrad();
  }

  /**
   * The optimizer state for a checkpoint. The tensors are copies that the caller owns
   * (dispose them after writing): later steps do not change a saved state dict.
   */
  stateDict(): OptimizerStateDict {
    const tensors: Record<string, Tensor> = {};
    const state: Record<string, { step: number }> = {};
    this.allParams().forEach((p, i) => {
      const st = this.state.get(p);
      if (st === undefined) return;
      state[String(i)] = { step: st.step };
      for (const [name, v] of st.tensors) tensors[`state.${i}.${name}`] = tf.clone(v);
    });
    let offset = 0;
    const paramGroups = this.paramGroups.map((group) => {
      const { params, ...hyper } = group;
      const json = { ...cloneJson(hyper), params: params.map((_, j) => offset + j) };
      offset += params.length;
      return json;
    });
    return { tensors, json: { state, paramGroups } };
  }

  /**
   * Restores a state saved by {@link Optimizer.stateDict} (copying the tensors; the caller
   * keeps ownership of `sd`). Group hyperparameters, the current `lr` included, are taken
   * from the saved state, as PyTorch does.
   * @throws MisconfigurationError if the number of groups, of parameters per group, or a
   *   state tensor's shape differs from this optimizer's parameters.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const json: unknown = sd?.json;
    if (!isRecord(json) || !isRecord(json.state) || !Array.isArray(json.paramGroups)) {
      throw new MisconfigurationError('optimizer state dict must be `{ tensors, json: { state, paramGroups } }` as returned by `stateDict()`');
    }
    const savedGroups: unknown[] = json.paramGroups;
    if (savedGroups.length !== this.paramGroups.length) {
      throw new MisconfigurationError(
        `optimizer state dict has ${savedGroups.length} parameter group(s) but the optimizer has ${this.paramGroups.length}`,
      );
    }
    savedGroups.forEach((saved, gi) => {
      const count = isRecord(saved) && Array.isArray(saved.params) ? saved.params.length : -1;
      if (count !== this.paramGroups[gi].params.length) {
        throw new MisconfigurationError(
          `optimizer state dict parameter group ${gi} has ${count < 0 ? 'no `params` list' : `${count} parameter(s)`} but the optimizer's group has ${this.paramGroups[gi].params.length}`,
        );
      }
    });
    const params = this.allParams();
    const restored = new Map<Parameter, ParamState>();
    const tensorsByIndex = groupTensorKeys(sd.tensors ?? {}, params.length);
    for (const [key, value] of Object.entries(json.state)) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= params.length || !isRecord(value) || !isNonNegativeInt(value.step)) {
        throw new MisconfigurationError(`optimizer state dict entry \`state.${key}\` must be { step: non-negative integer } for one of the ${params.length} parameters, got ${showValue(value)}`);
      }
      restored.set(params[i], { step: value.step, tensors: new Map() });
    }
    for (const [i, entries] of tensorsByIndex) {
      const p = params[i];
      const st = restored.get(p);
      if (st === undefined) throw new MisconfigurationError(`optimizer state dict has tensors for parameter ${i} but no \`state.${i}\` step count`);
      for (const [name, t] of entries) {
        if (!sameShape(t.shape, p.shape)) {
          throw new MisconfigurationError(
            `optimizer state tensor \`state.${i}.${name}\` has shape [${t.shape.join(', ')}] but parameter ${i} has shape [${p.shape.join(', ')}]`,
          );
        }
      }
    }
    const merged = savedGroups.map((saved, gi) => this.mergeHyperparams(this.paramGroups[gi], saved as Record<string, unknown>, gi));
    // All checks passed: only now replace the live state, so a failed load changes nothing.
    merged.forEach((values, gi) => Object.assign(this.paramGroups[gi], values));
    this.disposeState();
    for (const [p, st] of restored) this.state.set(p, st);
    for (const [i, entries] of tensorsByIndex) {
      const st = restored.get(params[i]) as ParamState;
      for (const [name, t] of entries) st.tensors.set(name, tf.variable(t.dtype === 'float32' ? tf.clone(t) : tf.cast(t, 'float32'), false));
    }
  }

  /** The state of one parameter (undefined before its first update); for tests and tools. */
  getState(p: Parameter): Readonly<ParamState> | undefined {
    return this.state.get(p);
  }

  /** Releases the optimizer's state tensors (the parameters are not touched). */
  dispose(): void {
    this.disposeState();
  }

  /**
   * Updates one parameter in place. Runs inside `tf.tidy`; `state.step` has already been
   * incremented. Use {@link Optimizer.stateTensor} for persistent tensors.
   */
  protected abstract updateParam(p: Parameter, grad: Tensor, group: ParamGroup<H>, state: ParamState): void;

  /**
   * Checks one group's merged hyperparameters; subclasses call `super.validateGroup` first.
   * @throws MisconfigurationError naming the option, the group and the value.
   */
  protected validateGroup(group: ParamGroup<H>, index: number): void {
    checkNumber(group.lr, 'lr', index, (v) => v >= 0, 'a non-negative number');
    checkNumber(group.weightDecay, 'weightDecay', index, (v) => v >= 0, 'a non-negative number');
  }

  /** Returns the state tensor `name`, creating it from `init()` (e.g. zeros) on first use. */
  protected stateTensor(state: ParamState, name: string, init: () => Tensor): Variable {
    let v = state.tensors.get(name);
    if (v === undefined) {
      v = tf.variable(init(), false);
      state.tensors.set(name, v);
    }
    return v;
  }

  /** Every parameter in group order; position = global index used by the state dict. */
  private allParams(): Parameter[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The group's hyperparameters overwritten by the saved ones, type-checked and validated. */
  private mergeHyperparams(group: ParamGroup<H>, saved: Record<string, unknown>, gi: number): ParamGroup<H> {
    const merged: Record<string, unknown> = { ...(group as unknown as Record<string, unknown>) };
    for (const [key, value] of Object.entries(saved)) {
      if (key === 'params') continue;
      const current = merged[key];
      if (current !== undefined && kindOf(current) !== kindOf(value)) {
        throw new MisconfigurationError(
          `optimizer state dict parameter group ${gi} has \`${key}\` = ${showValue(value)}, expected a value like ${showValue(current)}`,
        );
      }
      merged[key] = cloneJson(value);
    }
    const result = merged as unknown as ParamGroup<H>;
    this.validateGroup(result, gi);
    return result;
  }

  private disposeState(): void {
    for (const st of this.state.values()) for (const v of st.tensors.values()) v.dispose();
    this.state.clear();
  }
}

/** Throws a MisconfigurationError unless `value` is a finite number satisfying `ok`. */
export function checkNumber(value: unknown, name: string, group: number, ok: (v: number) => boolean, expected: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new MisconfigurationError(`\`${name}\` must be ${expected}, got ${showValue(value)} (parameter group ${group})`);
  }
}

function isGroupList<H extends BaseHyperparams>(
  params: readonly Parameter[] | ReadonlyArray<ParamGroupInput<H>>,
): params is ReadonlyArray<ParamGroupInput<H>> {
  const first: unknown = params[0];
  return isRecord(first) && 'params' in first && !('variable' in first);
}

function copyArrays<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])) as T;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isNonNegativeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

function kindOf(x: unknown): string {
  return Array.isArray(x) ? `array${x.length}` : typeof x;
}

function cloneJson<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Parses `state.<i>.<name>` keys into index → (name → tensor), rejecting anything else. */
function groupTensorKeys(tensors: Record<string, Tensor>, numParams: number): Map<number, Map<string, Tensor>> {
  const out = new Map<number, Map<string, Tensor>>();
  for (const [key, t] of Object.entries(tensors)) {
    const m = /^state\.(\d+)\.(.+)$/.exec(key);
    const i = m ? Number(m[1]) : -1;
    if (!m || i >= numParams) {
      throw new MisconfigurationError(`optimizer state tensor key \`${key}\` must be \`state.<index>.<name>\` with index < ${numParams}`);
    }
    let entry = out.get(i);
    if (entry === undefined) out.set(i, (entry = new Map()));
    entry.set(m[2], t);
  }
  return out;
}
