/**
 * Raised while constructing objects from user input (flags, configs, options) when a
 * value is out of range or options conflict. Messages name the option in backticks,
 * repeat the value received and say what was expected, as Lightning's
 * `MisconfigurationException` does.
 */
export class MisconfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MisconfigurationError';
  }
}

/** Formats a value for an error message: strings quoted, objects as JSON. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
