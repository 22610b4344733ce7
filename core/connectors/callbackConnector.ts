import type { Callback } from '../callback.js';
import { create, isRegistered } from '../registry.js';

/**
 * Builds the callback list (Lightning's `_CallbackConnector`): the user's callbacks, the
 * defaults the Trainer flags ask for (progress bar, ModelCheckpoint — resolved through the
 * registry, since `callbacks/` sits above `core/`), and the module's `configureCallbacks()`
 * (which replace user callbacks of the same class). Checkpoint callbacks go last so they
 * see every metric logged before them.
 */
export function buildCallbacks(
  user: readonly Callback[],
  opts: { enableProgressBar: boolean; enableCheckpointing: boolean; defaultRootDir: string },
): Callback[] {
  const callbacks = [...user];
  const has = (name: string): boolean => callbacks.some((cb) => hasKind(cb, name));
  if (opts.enableProgressBar && !has('progressBar') && isRegistered('callback', 'progress_bar')) {
    callbacks.push(create<Callback>('callback', 'progress_bar'));
  }
  if (opts.enableCheckpointing && !has('checkpoint') && isRegistered('callback', 'model_checkpoint')) {
    callbacks.push(create<Callback>('callback', 'model_checkpoint'));
  }
  return callbacks;
}

/** Merges the module's callbacks: each replaces the trainer's callbacks of the same class. */
export function mergeModuleCallbacks(trainerCallbacks: readonly Callback[], moduleCallbacks: readonly Callback[]): Callback[] {
  if (moduleCallbacks.length === 0) return reorder(trainerCallbacks);
  const types = new Set(moduleCallbacks.map((cb) => cb.constructor));
  return reorder([...trainerCallbacks.filter((cb) => !types.has(cb.constructor)), ...moduleCallbacks]);
}

function reorder(callbacks: readonly Callback[]): Callback[] {
  return [...callbacks.filter((cb) => !hasKind(cb, 'checkpoint')), ...callbacks.filter((cb) => hasKind(cb, 'checkpoint'))];
}

/** Callbacks declare what they are with a `callbackKind` property (`'checkpoint'`, `'progressBar'`...). */
export function hasKind(cb: Callback, kind: string): boolean {
  return 'callbackKind' in cb && (cb as { callbackKind: unknown }).callbackKind === kind;
}
