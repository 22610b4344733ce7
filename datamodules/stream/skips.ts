/**
 * Counts what a stream skipped, per epoch and in total, and prints the first few reasons
 * (then only epoch summaries), like the folder datamodule's corrupt-image accounting.
 */
export type SkipKind = 'corrupt' | 'incomplete' | 'shard';

const LABELS: Record<SkipKind, string> = {
  corrupt: 'corrupt samples (image or caption unreadable)',
  incomplete: 'samples without the image or text key',
  shard: 'shards that failed part-way or could not be opened',
};

export class SkipLog {
  readonly total: Record<SkipKind, number> = { corrupt: 0, incomplete: 0, shard: 0 };
  epoch: Record<SkipKind, number> = { corrupt: 0, incomplete: 0, shard: 0 };
  /** First shard failure of the epoch (for the error when nothing could be read). */
  firstShardError: string | null = null;
  private warnings = 0;

  constructor(
    private readonly warn: ((line: string) => void) | null,
    private readonly log: ((line: string) => void) | null,
    private readonly maxWarnings = 20,
  ) {}

  skip(kind: SkipKind, what: string, why: string): void {
    this.total[kind]++;
    this.epoch[kind]++;
    if (kind === 'shard') this.firstShardError ??= `${what}: ${why}`;
    if (kind === 'incomplete') return; // open_clip filters these silently; only counted
    if (this.warnings < this.maxWarnings) this.warn?.(`skipping ${kind === 'shard' ? 'the rest of shard' : 'sample'} ${what}: ${why}`);
    else if (this.warnings === this.maxWarnings) this.warn?.('(further skip warnings suppressed; counts follow at epoch end)');
    this.warnings++;
  }

  startEpoch(): void {
    this.epoch = { corrupt: 0, incomplete: 0, shard: 0 };
    this.firstShardError = null;
  }

  endEpoch(epoch: number): void {
    const parts = (Object.keys(LABELS) as SkipKind[]).filter((k) => this.epoch[k] > 0).map((k) => `${this.epoch[k]} ${LABELS[k]}`);
    if (parts.length > 0) this.log?.(`epoch ${epoch}: skipped ${parts.join(', ')}`);
  }
}
