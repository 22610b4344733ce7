import { Callback } from '../core/callback.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Redraw every n batches (TTY) (default 1). */
  refreshRate?: number;
  /** Without a TTY, print a plain line every this many seconds (default 10). */
  plainIntervalSeconds?: number;
  /** Where to write (default process.stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/**
 * The terminal progress bar (Lightning's TQDMProgressBar): epoch, batch/total, it/s,
 * elapsed and ETA, and the metrics logged with `progBar: true`. When stdout is not a TTY
 * (CI, `| tee log`), it prints a plain line every `plainIntervalSeconds` instead, so logs
 * stay readable.
 */
export class ProgressBar extends Callback {
  readonly callbackKind = 'progressBar';
  private readonly refreshRate: number;
  private readonly plainInterval: number;
  private readonly stream: NonNullable<ProgressBarOptions['stream']>;
  private epochStart = 0;
  private lastPlain = 0;
  private batchesThisEpoch = 0;
  private drawn = false;

  constructor(options: ProgressBarOptions = {}) {
    super();
    this.refreshRate = Math.max(1, options.refreshRate ?? 1);
    this.plainInterval = options.plainIntervalSeconds ?? 10;
    this.stream = options.stream ?? process.stdout;
  }

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  override onTrainEpochStart(trainer: Trainer): void {
    this.epochStart = performance.now();
    this.lastPlain = this.epochStart;
    this.batchesThisEpoch = 0;
  }

  override onTrainBatchEnd(trainer: Trainer): void {
    if (!trainer.isGlobalZero) return;
    this.batchesThisEpoch++;
    const now = performance.now();
    const done = trainer.fitLoop.batchesDoneInEpoch;
    const total = trainer.numTrainingBatches;
    if (this.tty) {
      if (this.batchesThisEpoch % this.refreshRate !== 0 && done !== total) return;
      this.write(`\r\x1b[2K${this.line(trainer, now, done, total)}`);
      this.drawn = true;
    } else if ((now - this.lastPlain) / 1000 >= this.plainInterval) {
      this.lastPlain = now;
      this.write(`${this.line(trainer, now, done, total)}\n`);
    }
  }

  override onTrainEpochEnd(trainer: Trainer): void {
    if (!trainer.isGlobalZero) return;
    const now = performance.now();
    const line = this.line(trainer, now, trainer.fitLoop.batchesDoneInEpoch, trainer.numTrainingBatches);
    this.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    this.drawn = false;
  }

  override onValidationEnd(trainer: Trainer): void {
    if (!trainer.isGlobalZero || trainer.sanityChecking || trainer.stage !== 'fit' || this.tty) return;
    const val = Object.entries(trainer.progressBarMetrics).filter(([k]) => k.startsWith('val'));
    if (val.length) this.write(`Validation epoch ${trainer.currentEpoch}: ${formatMetrics(Object.fromEntries(val))}\n`);
  }

  override onFitEnd(trainer: Trainer): void {
    if (this.drawn && trainer.isGlobalZero) this.write('\n');
  }

  /** One status line: `Epoch 2: 40/100 [00:12<00:18, 3.31it/s] loss=0.512`. */
  line(trainer: Trainer, now: number, done: number, total: number): string {
    const elapsed = (now - this.epochStart) / 1000;
    const rate = this.batchesThisEpoch / Math.max(elapsed, 1e-9);
    const totalText = Number.isFinite(total) ? String(total) : '?';
    const eta = Number.isFinite(total) && rate > 0 ? formatTime((total - done) / rate) : '?';
    const pct = Number.isFinite(total) && total > 0 ? `${String(Math.floor((100 * done) / total)).padStart(3)}%` : '';
    const speed = rate >= 1 ? `${rate.toFixed(2)}it/s` : `${(1 / Math.max(rate, 1e-9)).toFixed(2)}s/it`;
    const metrics = formatMetrics(trainer.progressBarMetrics);
    const text = `Epoch ${trainer.currentEpoch}: ${pct} ${done}/${totalText} [${formatTime(elapsed)}<${eta}, ${speed}]${metrics ? ` ${metrics}` : ''}`;
    const cols = this.stream.columns;
    return this.tty && cols && text.length > cols ? text.slice(0, cols - 1) : text;
  }

  private write(s: string): void {
    this.stream.write(s);
  }
}

function formatTime(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${String(m).padStart(2, '0')}:${ss}`;
}

function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(2)}`)
    .join(' ');
}

register('callback', 'progress_bar', (o) => new ProgressBar(o as ProgressBarOptions), { description: 'terminal progress bar' });
