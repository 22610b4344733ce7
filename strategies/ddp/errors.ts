/**
 * Raised when a collective cannot complete: a rank timed out, crashed, left, or called a
 * different collective. `ranks` are the ranks blamed (the ones this rank was waiting for,
 * or the one that failed), so callers and tests can act on them without parsing text.
 */
export class DistributedError extends Error {
  constructor(
    message: string,
    readonly ranks: readonly number[] = [],
  ) {
    super(message);
    this.name = 'DistributedError';
  }
}

/** "rank 2", "ranks 1, 3". */
export function describeRanks(ranks: readonly number[]): string {
  const sorted = [...ranks].sort((a, b) => a - b);
  return sorted.length === 1 ? `rank ${sorted[0]}` : `ranks ${sorted.join(', ')}`;
}
