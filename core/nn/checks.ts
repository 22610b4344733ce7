/**
 * Constructor-argument checks shared by the layers (internal: not re-exported from the
 * `nn` index). They throw `MisconfigurationError` naming the option, as STYLE.md §11 asks.
 */
import { MisconfigurationError, showValue } from '../errors.js';

/** Throws unless `value` is an integer ≥ `min` (default 1). */
export function checkInt(name: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new MisconfigurationError(`\`${name}\` must be an integer >= ${min}, got ${showValue(value)}`);
  }
}

/** Throws unless `value` is in [0, 1) (dropout probabilities of layers that must keep something). */
export function checkDropout(name: string, value: number): void {
  if (!(value >= 0 && value < 1)) {
    throw new MisconfigurationError(`\`${name}\` must be a probability in [0, 1), got ${showValue(value)}`);
  }
}

/** Expands `n` or `[a, b]` to a pair of integers ≥ `min`, as PyTorch's `_pair`. */
export function pair(name: string, value: number | readonly [number, number], min = 1): [number, number] {
  const p: [number, number] = typeof value === 'number' ? [value, value] : [value[0], value[1]];
  if (!Array.isArray(value) && typeof value !== 'number') {
    throw new MisconfigurationError(`\`${name}\` must be a number or a pair of numbers, got ${showValue(value)}`);
  }
  if (!p.every((v) => Number.isInteger(v) && v >= min)) {
    throw new MisconfigurationError(`\`${name}\` must be an integer >= ${min} or a pair of them, got ${showValue(value)}`);
  }
  return p;
}
