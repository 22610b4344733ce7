import type { Callback } from '../callback.js';
import type { LightningModule } from '../module.js';
import type { Trainer } from '../trainer.js';

/* The only place hooks are dispatched from (Lightning's `trainer/call.py`): loops never
 * call `callback.onX()` directly. Each call sets `trainer.currentHookName`, which `log()`
 * uses to pick its defaults and to reject logging where nothing would aggregate it. */

type Fn = (...args: never[]) => unknown;
type CallbackHook = {
  [K in keyof Callback]: Callback[K] extends (trainer: Trainer, module: LightningModule, ...rest: never[]) => unknown ? K : never;
}[keyof Callback];
type CallbackRest<K extends CallbackHook> = Callback[K] extends (trainer: Trainer, module: LightningModule, ...rest: infer A) => unknown ? A : never;
type ModuleHook = {
  [K in keyof LightningModule]: LightningModule[K] extends Fn ? K : never;
}[keyof LightningModule];
type ModuleArgs<K extends ModuleHook> = LightningModule[K] extends (...args: infer A) => unknown ? A : never;
type ModuleResult<K extends ModuleHook> = LightningModule[K] extends (...args: never[]) => infer R ? R : never;

/** Calls `hook` on every callback, in order (checkpointing callbacks are last). */
export async function callCallbackHooks<K extends CallbackHook>(
  trainer: Trainer,
  hook: K,
  ...args: CallbackRest<K>
): Promise<void> {
  await callCallbackHooksOn(trainer, trainer.callbacks, hook, ...args);
}

/** Calls `hook` on the given callbacks only (used to order monitoring callbacks last). */
export async function callCallbackHooksOn<K extends CallbackHook>(
  trainer: Trainer,
  callbacks: readonly Callback[],
  hook: K,
  ...args: CallbackRest<K>
): Promise<void> {
  const module = trainer.lightningModule;
  const previous = trainer.currentHookName;
  for (const cb of callbacks) {
    trainer.currentHookName = hook;
    const fn = cb[hook] as unknown as (t: Trainer, m: LightningModule, ...rest: CallbackRest<K>) => unknown;
    await fn.call(cb, trainer, module, ...args);
  }
  trainer.currentHookName = previous;
}

/** Calls `hook` on the LightningModule and returns its result. */
export function callModuleHook<K extends ModuleHook>(trainer: Trainer, hook: K, ...args: ModuleArgs<K>): ModuleResult<K> {
  const module = trainer.lightningModule;
  const previous = trainer.currentHookName;
  trainer.currentHookName = hook;
  let result: ModuleResult<K>;
  try {
    const fn = module[hook] as unknown as (...a: ModuleArgs<K>) => ModuleResult<K>;
    result = fn.apply(module, args);
  } catch (err) {
    trainer.currentHookName = previous;
    throw err;
  }
  if (result instanceof Promise) {
    // An async hook (a manual-optimization trainingStep) logs after its awaits: keep its
    // name current until it settles.
    return result.finally(() => {
      trainer.currentHookName = previous;
    }) as ModuleResult<K>;
  }
  trainer.currentHookName = previous;
  return result;
}

/**
 * Synchronous dispatch for the hooks that run inside tfjs's gradient tape
 * (`onBeforeZeroGrad`, `onBeforeBackward`, `onAfterBackward`): the tape function cannot
 * await, so these hooks are synchronous on callbacks and module alike.
 */
export function callTapeHooks(
  trainer: Trainer,
  hook: 'onBeforeZeroGrad' | 'onBeforeBackward' | 'onAfterBackward',
  arg?: unknown,
): void {
  const module = trainer.lightningModule;
  const previous = trainer.currentHookName;
  trainer.currentHookName = hook;
  try {
    for (const cb of trainer.callbacks) {
      const fn = cb[hook] as (t: Trainer, m: LightningModule, a?: unknown) => void;
      fn.call(cb, trainer, module, arg);
    }
    const mfn = module[hook] as (a?: unknown) => void;
    mfn.call(module, arg);
  } finally {
    trainer.currentHookName = previous;
  }
}
