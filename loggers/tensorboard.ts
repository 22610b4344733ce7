import type { Tensor } from '../core/tf.js';
import { MisconfigurationError, showValue } from '../core/errors.js';
import { register } from '../core/registry.js';
import { flattenParams, parseOptions, sanitizeParams, VersionedDirLogger, type VersionedLoggerOptions } from './common.js';
import { EventFileWriter } from './tensorboard/eventWriter.js';
import { computeHistogram, type HistogramBins } from './tensorboard/histogram.js';
import { encodePng, isPng, readPngInfo, type RawImage } from './tensorboard/png.js';
import {
  encodeSummary,
  histogramValue,
  hparamsValues,
  imageValue,
  scalarValue,
  textValue,
  type HParamValue,
} from './tensorboard/summary.js';

/** Options of {@link TensorBoardLogger}. */
export interface TensorBoardLoggerOptions extends VersionedLoggerOptions {
  /**
   * When `logHyperparams` gets no metrics, log `hp_metric = -1` so the hparams view has a
   * column to fill later (Lightning's `default_hp_metric`). Default true.
   */
  readonly defaultHpMetric?: boolean;
  /** Prepended to every metric key with `-` (Lightning's `prefix`/`LOGGER_JOIN_CHAR`). */
  readonly prefix?: string;
  /** Seconds between automatic flushes of the event file. Default 120. */
  readonly flushSecs?: number;
}

/**
 * Pixels for {@link TensorBoardLogger.addImage}: 8-bit values as they are, floats taken
 * as [0, 1] and scaled by 255 (torch's `add_image` convention).
 */
export interface ImagePixels {
  readonly width: number;
  readonly height: number;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; interleaved, row-major. */
  readonly channels: 1 | 2 | 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray | Float32Array;
}

/** An image: PNG file bytes, interleaved pixels, or an `[H, W]`/`[H, W, C]` tensor. */
export type ImageInput = Uint8Array | ImagePixels | Tensor;

const TENSORBOARD_OPTION_SPECS = {
  defaultHpMetric: { type: 'boolean' },
  prefix: { type: 'string' },
  flushSecs: { type: 'number', check: (v: number) => Number.isFinite(v) && v > 0, expected: 'a positive number of seconds' },
} as const;

function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && typeof (x as Tensor).dataSync === 'function' && Array.isArray((x as Tensor).shape);
}

/** Scales floats in [0, 1] to bytes (clamped); integer tensors are taken as 0..255 already. */
function toBytes(data: ArrayLike<number>, scale: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(data[i]! * scale)));
  return out;
}

function toRawImage(tag: string, image: ImagePixels | Tensor): RawImage {
  if (isTensor(image)) {
    const [h, w, c = 1] = image.shape;
    if ((image.rank !== 2 && image.rank !== 3) || ![1, 2, 3, 4].includes(c)) {
      throw new MisconfigurationError(`addImage(\`${tag}\`): tensor must be [H, W] or [H, W, C] with C in 1..4, got shape ${showValue(image.shape)}.`);
    }
    const scale = image.dtype === 'float32' ? 255 : 1;
    return { width: w!, height: h!, channels: c as RawImage['channels'], data: toBytes(image.dataSync() as ArrayLike<number>, scale) };
  }
  const data = image.data instanceof Float32Array ? toBytes(image.data, 255) : image.data;
  return { width: image.width, height: image.height, channels: image.channels, data };
}

/**
 * Writes TensorBoard event files directly (no TensorFlow or tensorboard package needed):
 * scalars, histograms, PNG images, text and the hparams plugin's summaries, into
 * `<saveDir>/<name>/version_N/events.out.tfevents.*`, as Lightning's `TensorBoardLogger`.
 *
 * @example
 * ```ts
 * const logger = new TensorBoardLogger({ saveDir: 'runs' });
 * logger.logHyperparams({ lr: 5e-4, model: 'ViT-B/32' });
 * logger.logMetrics({ 'train/loss': 2.3 }, 10);
 * logger.finalize('success');
 * ```
 */
export class TensorBoardLogger extends VersionedDirLogger {
  private readonly defaultHpMetric: boolean;
  private readonly prefix: string;
  private readonly flushSecs: number | undefined;
  private writer: EventFileWriter | undefined;

  /** @throws MisconfigurationError on an invalid or unknown option */
  constructor(options: TensorBoardLoggerOptions) {
    const o = parseOptions<TensorBoardLoggerOptions>(options, 'TensorBoardLogger', TENSORBOARD_OPTION_SPECS);
    super(o);
    this.defaultHpMetric = o.defaultHpMetric ?? true;
    this.prefix = o.prefix ?? '';
    this.flushSecs = o.flushSecs;
  }

  /** The event file writer, opened on first use (Lightning's `experiment`). */
  get experiment(): EventFileWriter {
    if (this.writer === undefined || this.writer.closed) {
      this.writer = new EventFileWriter(this.logDir, { flushSecs: this.flushSecs });
    }
    return this.writer;
  }

  /** Writes one scalar per key with `simple_value`, as `add_scalar`. */
  override logMetrics(metrics: Record<string, number>, step: number): void {
    for (const [key, value] of Object.entries(metrics)) {
      this.addScalar(this.prefix ? `${this.prefix}-${key}` : key, value, step);
    }
  }

  /**
   * Records hyperparameters: merges them into `hparams.yaml`, and writes the hparams
   * plugin's experiment / session-start / session-end summaries with the flattened,
   * sanitized values. As in Lightning, the summaries are only written when there are
   * metrics to show next to them (`hp_metric = -1` by default), and those metrics are
   * logged at step 0.
   * @param metrics final metrics for the hparams table; later `logMetrics` calls with the
   *   same keys update the table
   */
  override logHyperparams(params: Record<string, unknown>, metrics?: Record<string, number>): void {
    this.recordHyperparams(params);
    const flat = sanitizeParams(flattenParams(params));
    const shown = metrics ?? (this.defaultHpMetric ? { hp_metric: -1 } : undefined);
    if (shown === undefined || Object.keys(shown).length === 0) return;
    this.logMetrics(shown, 0);
    this.addHparams(flat, Object.keys(shown).map((k) => (this.prefix ? `${this.prefix}-${k}` : k)));
  }

  /** Writes the three hparams plugin summaries for already flat values. */
  addHparams(hparams: Record<string, HParamValue>, metricTags: readonly string[]): void {
    const now = Date.now() / 1000;
    const v = hparamsValues(hparams, metricTags, { startTimeSecs: now });
    // Each in its own Summary/Event, as torch's FileWriter.add_summary(exp/ssi/sei) does.
    for (const value of [v.experiment, v.sessionStartInfo, v.sessionEndInfo]) {
      this.experiment.addSummary(encodeSummary([value]), 0, now);
    }
  }

  /** Writes one scalar (stored as float32). */
  addScalar(tag: string, value: number, step: number): void {
    this.experiment.addSummary(encodeSummary([scalarValue(tag, value)]), step);
  }

  /**
   * Writes a histogram of `values`. Non-finite values are skipped.
   * @param bins `'tensorflow'` (default: TensorFlow's exponential buckets), a bucket count
   *   for uniform buckets over [min, max], or explicit increasing edges
   * @throws MisconfigurationError when `bins` is invalid or no value is finite
   */
  addHistogram(tag: string, values: ArrayLike<number> | Tensor, step: number, bins: HistogramBins = 'tensorflow'): void {
    const data = isTensor(values) ? (values.dataSync() as ArrayLike<number>) : values;
    this.experiment.addSummary(encodeSummary([histogramValue(tag, computeHistogram(data, bins, tag))]), step);
  }

  /**
   * Writes an image. PNG bytes are stored as they are; pixels and tensors are encoded to
   * PNG first.
   * @throws MisconfigurationError when bytes are not a PNG or sizes and data disagree
   */
  addImage(tag: string, image: ImageInput, step: number): void {
    let png: Uint8Array;
    if (image instanceof Uint8Array) {
      if (!isPng(image)) {
        throw new MisconfigurationError(`addImage(\`${tag}\`): bytes must be a PNG file (signature 89 50 4E 47 ...); pass pixels as { width, height, channels, data } instead.`);
      }
      png = image;
    } else {
      try {
        png = encodePng(toRawImage(tag, image));
      } catch (err) {
        if (err instanceof RangeError) throw new MisconfigurationError(`addImage(\`${tag}\`): ${err.message}.`);
        throw err;
      }
    }
    const info = readPngInfo(png);
    const value = imageValue(tag, { height: info.height, width: info.width, colorspace: info.channels, encoded: png });
    this.experiment.addSummary(encodeSummary([value]), step);
  }

  /**
   * Writes text (Markdown in TensorBoard's text tab). The tag gets torch's
   * `/text_summary` suffix, so runs written by either show under the same name.
   */
  addText(tag: string, text: string, step: number): void {
    this.experiment.addSummary(encodeSummary([textValue(`${tag}/text_summary`, text)]), step);
  }

  /** Flushes buffered events to disk. */
  override save(): void {
    this.writer?.flush();
  }

  /** Flushes and closes the event file; a later write opens a new file. */
  override finalize(_status: 'success' | 'failed' | 'interrupted'): void {
    this.writer?.close();
  }
}

register('logger', 'tensorboard', (options) => new TensorBoardLogger(options as unknown as TensorBoardLoggerOptions), {
  description: 'TensorBoard event files (scalars, histograms, images, text, hparams) in <saveDir>/<name>/version_N',
});
