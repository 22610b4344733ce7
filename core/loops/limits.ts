import { MisconfigurationError } from '../errors.js';

/**
 * How many batches a `limit*Batches` option allows. JavaScript has no int/float
 * distinction, so lightclip's rule (documented on the Trainer options) is: `null` = all,
 * a number in (0, 1) = that fraction of the loader, an integer ≥ 1 = that many batches,
 * 0 = none. (Lightning's `1.0` meaning "all" is `null` here.)
 */
export function limitBatches(limit: number | null, length: number | undefined): number {
  if (limit === null) return Infinity;
  if (limit === 0) return 0;
  if (limit > 0 && limit < 1) {
    if (length === undefined) {
      throw new MisconfigurationError(`A fractional batch limit (${limit}) needs a loader with a known \`length\`; pass an integer count instead.`);
    }
    return Math.max(1, Math.floor(length * limit));
  }
  return limit;
}

/** Validates a `limit*Batches`-style option. */
export function checkLimit(name: string, value: number | null): void {
  if (value === null) return;
  const ok = Number.isFinite(value) && value >= 0 && (value < 1 || Number.isInteger(value));
  if (!ok) {
    throw new MisconfigurationError(`\`${name}\` must be null (all), a fraction in (0, 1), or an integer ≥ 0, got ${value}.`);
  }
}
