import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { register } from '../core/registry.js';
import { parseOptions, VersionedDirLogger, type VersionedLoggerOptions } from './common.js';

/** Options of {@link CSVLogger}. */
export interface CSVLoggerOptions extends VersionedLoggerOptions {
  /**
   * Write buffered rows every N steps (when `(step + 1) % N === 0`), as Lightning's
   * `flush_logs_every_n_steps`. Default 100. `save()`/`finalize()` always write.
   */
  readonly flushLogsEveryNSteps?: number;
}

const CSV_OPTION_SPECS = {
  flushLogsEveryNSteps: {
    type: 'number',
    check: (v: number) => Number.isInteger(v) && v >= 1,
    expected: 'a positive integer',
  },
} as const;

/** One CSV cell: quoted when it holds a comma, quote or line break (RFC 4180). */
function csvCell(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Formats a metric as Python's csv module would (so pandas reads `nan`/`inf` back). */
function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}

/** Parses RFC 4180 CSV (quoted cells, doubled quotes, CRLF or LF) into rows of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/**
 * Logs metrics to `<saveDir>/<name>/version_N/metrics.csv` and hyperparameters to
 * `hparams.yaml`, as Lightning's `CSVLogger`. Columns are `step` followed by every metric
 * key seen so far, sorted; one row per `logMetrics` call, blank where a key was not
 * logged. When a new key appears the whole file is rewritten with the wider header
 * (Lightning's `_rewrite_with_new_header`); otherwise rows are appended. Writing into an
 * existing `metrics.csv` (a resumed run with a fixed `version`) keeps its rows.
 *
 * @example
 * ```ts
 * const logger = new CSVLogger({ saveDir: 'runs' });
 * logger.logMetrics({ 'train/loss': 2.3 }, 0);
 * logger.finalize('success'); // runs/lightning_logs/version_0/metrics.csv
 * ```
 */
export class CSVLogger extends VersionedDirLogger {
  /** Lightning's `NAME_METRICS_FILE`. */
  static readonly NAME_METRICS_FILE = 'metrics.csv';

  private readonly flushEvery: number;
  private pending: Array<{ step: number; metrics: Record<string, number> }> = [];
  /** Metric keys in the header on disk (without `step`), sorted; undefined until the file is read. */
  private fileKeys: string[] | undefined;

  /** @throws MisconfigurationError on an invalid or unknown option */
  constructor(options: CSVLoggerOptions) {
    const o = parseOptions<CSVLoggerOptions>(options, 'CSVLogger', CSV_OPTION_SPECS);
    super(o);
    this.flushEvery = o.flushLogsEveryNSteps ?? 100;
  }

  /** Full path of `metrics.csv`. */
  get metricsFilePath(): string {
    return join(this.logDir, CSVLogger.NAME_METRICS_FILE);
  }

  /** Buffers one row; writes the buffer when `(step + 1) % flushLogsEveryNSteps === 0`. */
  override logMetrics(metrics: Record<string, number>, step: number): void {
    this.pending.push({ step, metrics: { ...metrics } });
    if ((step + 1) % this.flushEvery === 0) this.save();
  }

  /** Merges `params` into `hparams.yaml`. CSV has no hparams view, so `metrics` are logged at step 0 like any metric. */
  override logHyperparams(params: Record<string, unknown>, metrics?: Record<string, number>): void {
    this.recordHyperparams(params);
    if (metrics !== undefined && Object.keys(metrics).length > 0) this.logMetrics(metrics, 0);
  }

  /** Writes buffered rows to `metrics.csv`, rewriting the file if the header grew. */
  override save(): void {
    if (this.pending.length === 0) return;
    const path = this.metricsFilePath;
    const exists = existsSync(path);
    let oldRows: string[][] = [];
    if (this.fileKeys === undefined) {
      // First write of this logger: adopt the header of an existing file (resumed run).
      if (exists) {
        const rows = parseCsv(readFileSync(path, 'utf8'));
        this.fileKeys = (rows[0] ?? ['step']).slice(1);
        oldRows = rows;
      } else this.fileKeys = [];
    }
    const keys = new Set(this.fileKeys);
    for (const row of this.pending) for (const k of Object.keys(row.metrics)) keys.add(k);
    const header = [...keys].sort();
    const fileKeys = this.fileKeys;
    const grew = header.length !== fileKeys.length || header.some((k, i) => k !== fileKeys[i]);
    const lines = this.pending.map((r) =>
      [String(r.step), ...header.map((k) => (k in r.metrics ? formatNumber(r.metrics[k]!) : ''))].map(csvCell).join(','),
    );
    this.pending = [];

    if (!exists) {
      writeFileSync(path, [['step', ...header].map(csvCell).join(','), ...lines].join('\n') + '\n');
    } else if (grew) {
      if (oldRows.length === 0) oldRows = parseCsv(readFileSync(path, 'utf8'));
      const oldHeader = oldRows[0] ?? ['step', ...this.fileKeys];
      const index = new Map(oldHeader.map((k, i) => [k, i]));
      const rewritten = oldRows.slice(1).map((cells) =>
        ['step', ...header].map((k) => { const i = index.get(k); return i === undefined ? '' : (cells[i] ?? ''); }).map(csvCell).join(','),
      );
      // Write the wider file beside the old one and rename, so a crash keeps one complete file.
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, [['step', ...header].map(csvCell).join(','), ...rewritten, ...lines].join('\n') + '\n');
      renameSync(tmp, path);
    } else {
      appendFileSync(path, lines.join('\n') + '\n');
    }
    this.fileKeys = header;
  }

  /** Writes what is buffered. */
  override finalize(_status: 'success' | 'failed' | 'interrupted'): void {
    this.save();
  }
}

register('logger', 'csv', (options) => new CSVLogger(options as unknown as CSVLoggerOptions), {
  description: 'metrics.csv (one column per metric) and hparams.yaml in <saveDir>/<name>/version_N',
});
