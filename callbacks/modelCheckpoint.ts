import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Callback } from '../core/callback.js';
import { removeCheckpoint } from '../core/checkpoint/io.js';
import { MisconfigurationError } from '../core/errors.js';
import type { LightningModule } from '../core/module.js';
import { register } from '../core/registry.js';
import type { Trainer } from '../core/trainer.js';
import { checkMode, readMonitor, type MonitorMode } from './monitor.js';

/** Options of {@link ModelCheckpoint}, as Lightning's. */
export interface ModelCheckpointOptions {
  /** Directory of the checkpoints (default `<logger dir>/checkpoints`, else `<defaultRootDir>/checkpoints`). */
  dirpath?: string | null;
  /** Name template: `{epoch}-{step}` → `epoch=2-step=300`; `{val_loss:.3f}` formats a metric. */
  filename?: string | null;
  /** Metric to rank checkpoints by (null: keep the latest). */
  monitor?: string | null;
  mode?: MonitorMode;
  /** Keep the best k (-1: all, 0: none). */
  saveTopK?: number;
  /** Also write `last.ckpt` at every save. */
  saveLast?: boolean;
  /** Save every n optimizer steps (instead of per epoch). */
  everyNTrainSteps?: number | null;
  /** Save every n epochs (default 1). */
  everyNEpochs?: number;
  /** Save only the weights (no optimizer/loop state: not resumable). */
  saveWeightsOnly?: boolean;
  /** Write `name=value` in the filename (default true). */
  autoInsertMetricName?: boolean;
}

/**
 * Decides *when* to checkpoint and *under which name* (Lightning's `ModelCheckpoint`); the
 * checkpoint connector decides the contents and `checkpoint/io.ts` writes it atomically.
 * Saves after validation (or at the end of a training epoch without validation), or
 * every `everyNTrainSteps` steps; keeps the top k by `monitor`.
 */
export class ModelCheckpoint extends Callback {
  static readonly CHECKPOINT_JOIN_CHAR = '-';
  static readonly CHECKPOINT_EQUALS_CHAR = '=';
  static readonly CHECKPOINT_NAME_LAST = 'last';
  static readonly FILE_EXTENSION = '.ckpt';
  readonly callbackKind = 'checkpoint';
  readonly monitorsMetrics = true;

  readonly monitor: string | null;
  readonly mode: MonitorMode;
  readonly saveTopK: number;
  readonly saveLast: boolean;
  readonly everyNTrainSteps: number | null;
  readonly everyNEpochs: number;
  dirpath: string | null;
  bestKModels: Record<string, number> = {};
  bestModelPath = '';
  bestModelScore: number | null = null;
  kthBestModelPath = '';
  lastModelPath = '';
  private readonly filename: string | null;
  private readonly weightsOnly: boolean;
  private readonly autoInsert: boolean;
  private lastSavedStep = -1;
  private validatedThisEpoch = false;

  constructor(options: ModelCheckpointOptions = {}) {
    super();
    this.monitor = options.monitor ?? null;
    this.mode = checkMode('ModelCheckpoint', options.mode ?? 'min');
    this.saveTopK = options.saveTopK ?? 1;
    this.saveLast = options.saveLast ?? false;
    this.everyNTrainSteps = options.everyNTrainSteps ?? null;
    this.everyNEpochs = options.everyNEpochs ?? 1;
    this.dirpath = options.dirpath ?? null;
    this.filename = options.filename ?? null;
    this.weightsOnly = options.saveWeightsOnly ?? false;
    this.autoInsert = options.autoInsertMetricName ?? true;
    if (!Number.isInteger(this.saveTopK) || this.saveTopK < -1) {
      throw new MisconfigurationError(`\`ModelCheckpoint(saveTopK=${this.saveTopK})\` must be an integer ≥ -1.`);
    }
    if (this.monitor === null && this.saveTopK !== 1 && this.saveTopK !== 0 && this.saveTopK !== -1) {
      throw new MisconfigurationError(`\`ModelCheckpoint(saveTopK=${this.saveTopK}, monitor=null)\` is not supported: ranking needs a \`monitor\`.`);
    }
    if (this.everyNTrainSteps !== null && (!Number.isInteger(this.everyNTrainSteps) || this.everyNTrainSteps < 1)) {
      throw new MisconfigurationError(`\`ModelCheckpoint(everyNTrainSteps=${this.everyNTrainSteps})\` must be an integer ≥ 1.`);
    }
    if (!Number.isInteger(this.everyNEpochs) || this.everyNEpochs < 1) {
      throw new MisconfigurationError(`\`ModelCheckpoint(everyNEpochs=${this.everyNEpochs})\` must be an integer ≥ 1.`);
    }
  }

  override get stateKey(): string {
    return this.generateStateKey({ monitor: this.monitor, mode: this.mode, everyNTrainSteps: this.everyNTrainSteps, everyNEpochs: this.everyNEpochs });
  }

  override setup(trainer: Trainer): void {
    this.dirpath ??= path.join(trainer.logDir, 'checkpoints');
  }

  override onTrainEpochStart(): void {
    this.validatedThisEpoch = false;
  }

  override async onTrainBatchEnd(trainer: Trainer): Promise<void> {
    const n = this.everyNTrainSteps;
    if (n !== null && trainer.globalStep > 0 && trainer.globalStep % n === 0) await this.saveCheckpoint(trainer);
  }

  override async onValidationEnd(trainer: Trainer): Promise<void> {
    if (trainer.sanityChecking || trainer.stage !== 'fit') return;
    this.validatedThisEpoch = true;
    if (this.everyNTrainSteps === null && (trainer.currentEpoch + 1) % this.everyNEpochs === 0) await this.saveCheckpoint(trainer);
  }

  override async onTrainEpochEnd(trainer: Trainer): Promise<void> {
    // Without validation this epoch, the end of the training epoch is the save point.
    if (!this.validatedThisEpoch && this.everyNTrainSteps === null && (trainer.currentEpoch + 1) % this.everyNEpochs === 0) {
      await this.saveCheckpoint(trainer);
    }
  }

  /** Saves now (top-k bookkeeping and `last.ckpt` included). */
  async saveCheckpoint(trainer: Trainer): Promise<void> {
    if (trainer.globalStep === this.lastSavedStep) return; // already saved at this step
    this.lastSavedStep = trainer.globalStep;
    const dir = this.dirpath!;
    await fs.mkdir(dir, { recursive: true });
    const metrics = { ...trainer.callbackMetrics, epoch: trainer.currentEpoch, step: trainer.globalStep };
    if (this.saveTopK !== 0) {
      if (this.monitor === null) {
        const file = await trainer.strategy.broadcast(this.formatPath(metrics));
        await trainer.saveCheckpoint(file, this.weightsOnly);
        if (this.saveTopK === 1 && this.bestModelPath && this.bestModelPath !== file && trainer.isGlobalZero) await removeCheckpoint(this.bestModelPath);
        this.bestModelPath = file;
        if (this.saveTopK === -1) this.bestKModels[file] = trainer.globalStep;
      } else {
        await this.saveTopKCheckpoint(trainer, readMonitor('ModelCheckpoint', trainer, this.monitor)!, metrics);
      }
    }
    if (this.saveLast) {
      const last = path.join(dir, ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION);
      await trainer.saveCheckpoint(last, this.weightsOnly);
      this.lastModelPath = last;
    }
  }

  private better(a: number, b: number): boolean {
    return this.mode === 'min' ? a < b : a > b;
  }

  private async saveTopKCheckpoint(trainer: Trainer, score: number, metrics: Record<string, number>): Promise<void> {
    const k = this.saveTopK;
    const entries = Object.keys(this.bestKModels);
    const full = k !== -1 && entries.length >= k;
    const improves = !full || (Number.isFinite(score) && this.better(score, this.bestKModels[this.kthBestModelPath]!));
    // Every rank must take the same branch (the save meets a barrier): save only when the
    // score improves on every rank, as Lightning's check_monitor_top_k.
    if (!(await trainer.strategy.reduceBooleanDecision(improves, { all: true }))) return;
    // Rank 0 names the file (the name may hold a rank-local metric), so every rank keeps
    // the same bookkeeping of the files rank 0 writes.
    const file = await trainer.strategy.broadcast(this.formatPath(metrics));
    await trainer.saveCheckpoint(file, this.weightsOnly);
    if (full) {
      const evict = this.kthBestModelPath;
      delete this.bestKModels[evict];
      if (evict !== file && trainer.isGlobalZero) await removeCheckpoint(evict);
    }
    this.bestKModels[file] = score;
    const ranked = Object.entries(this.bestKModels).sort((a, b) => (this.better(a[1], b[1]) ? -1 : this.better(b[1], a[1]) ? 1 : 0));
    [this.bestModelPath, this.bestModelScore] = ranked[0]!;
    this.kthBestModelPath = ranked[ranked.length - 1]![0];
  }

  /** The file name for the current metrics, with `-v1`, `-v2`... when the name is taken by another save. */
  formatPath(metrics: Record<string, number>): string {
    const template = this.filename ?? (this.monitor ? `{epoch}-{step}-{${this.monitor}}` : '{epoch}-{step}');
    const name = template.replace(/\{([^}:]+)(?::([^}]*))?\}/g, (_m, key: string, fmt?: string) => {
      const v = metrics[key];
      const text = v === undefined ? '' : formatNumber(v, fmt);
      return this.autoInsert ? `${key}${ModelCheckpoint.CHECKPOINT_EQUALS_CHAR}${text}` : text;
    });
    let file = path.join(this.dirpath!, name + ModelCheckpoint.FILE_EXTENSION);
    for (let v = 1; file in this.bestKModels && this.bestKModels[file] !== undefined && this.monitor !== null; v++) {
      file = path.join(this.dirpath!, `${name}${ModelCheckpoint.CHECKPOINT_JOIN_CHAR}v${v}${ModelCheckpoint.FILE_EXTENSION}`);
    }
    return file;
  }

  /**
   * The checkpoint `fit({ckptPath: 'last'})` resumes from: `last.ckpt` (or the newest
   * `.ckpt`) in this callback's directory, else the newest `last.ckpt` of any earlier
   * version under `<defaultRootDir>/lightning_logs` (a new Trainer logs to a new version).
   */
  async lastCheckpointPath(trainer?: Trainer): Promise<string | null> {
    const dirs = this.dirpath ? [this.dirpath] : [];
    if (trainer) {
      const logs = path.join(trainer.defaultRootDir, 'lightning_logs');
      const versions = await fs.readdir(logs).catch(() => [] as string[]);
      for (const v of versions) dirs.push(path.join(logs, v, 'checkpoints'));
      dirs.push(path.join(trainer.defaultRootDir, 'checkpoints'));
    }
    let best: { file: string; mtime: number; last: boolean } | null = null;
    for (const dir of dirs) {
      const files = await fs.readdir(dir).catch(() => [] as string[]);
      for (const f of files.filter((x) => x.endsWith(ModelCheckpoint.FILE_EXTENSION))) {
        const full = path.join(dir, f);
        const st = await fs.stat(full).catch(() => null);
        if (!st) continue;
        const last = f === ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION;
        if (!best || (last && !best.last) || (last === best.last && st.mtimeMs > best.mtime)) best = { file: full, mtime: st.mtimeMs, last };
      }
    }
    return best?.file ?? null;
  }

  override stateDict(): Record<string, unknown> {
    return {
      monitor: this.monitor,
      bestModelScore: this.bestModelScore,
      bestModelPath: this.bestModelPath,
      bestKModels: this.bestKModels,
      kthBestModelPath: this.kthBestModelPath,
      lastModelPath: this.lastModelPath,
      dirpath: this.dirpath,
    };
  }

  override loadStateDict(s: Record<string, unknown>): void {
    // Bookkeeping carries over only when resuming into the same directory, as in Lightning.
    if (s.dirpath !== this.dirpath) return;
    this.bestModelScore = (s.bestModelScore as number | null) ?? null;
    this.bestModelPath = String(s.bestModelPath ?? '');
    this.bestKModels = (s.bestKModels as Record<string, number>) ?? {};
    this.kthBestModelPath = String(s.kthBestModelPath ?? '');
    this.lastModelPath = String(s.lastModelPath ?? '');
  }

  override teardown(_trainer: Trainer, _module: LightningModule): void {}
}

function formatNumber(v: number, fmt?: string): string {
  const m = fmt ? /^\.(\d+)f$/.exec(fmt) : null;
  if (m) return v.toFixed(Number(m[1]));
  return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '');
}

register('callback', 'model_checkpoint', (o) => new ModelCheckpoint(o as ModelCheckpointOptions), { description: 'save checkpoints (top-k by a monitored metric, last.ckpt)' });
