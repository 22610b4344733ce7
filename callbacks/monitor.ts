import { MisconfigurationError } from '../core/errors.js';
import type { Trainer } from '../core/trainer.js';

/** 'min' when lower is better (losses), 'max' when higher is better (accuracies). */
export type MonitorMode = 'min' | 'max';

export function checkMode(owner: string, mode: unknown): MonitorMode {
  if (mode !== 'min' && mode !== 'max') throw new MisconfigurationError(`\`${owner}(mode=${JSON.stringify(mode)})\` must be 'min' or 'max'.`);
  return mode;
}

/**
 * Reads `monitor` from `trainer.callbackMetrics`.
 * @throws MisconfigurationError naming the metric and the available keys, with Lightning's hint.
 */
export function readMonitor(owner: string, trainer: Trainer, monitor: string, strict = true): number | null {
  const v = trainer.callbackMetrics[monitor];
  if (v === undefined) {
    if (!strict) return null;
    const available = Object.keys(trainer.callbackMetrics);
    throw new MisconfigurationError(
      `\`${owner}(monitor=${JSON.stringify(monitor)})\` could not find the monitored key in the returned metrics: ${available.length ? available.join(', ') : '(none)'}. ` +
        `HINT: Did you call \`this.log(${JSON.stringify(monitor)}, value)\` in the \`LightningModule\`?`,
    );
  }
  return v;
}

/** Whether `a` improves on `b` by more than `minDelta` in `mode`. */
export function improves(a: number, b: number | null, mode: MonitorMode, minDelta = 0): boolean {
  if (b === null) return Number.isFinite(a) || mode === 'min' ? !Number.isNaN(a) : true;
  return mode === 'min' ? a < b - minDelta : a > b + minDelta;
}
