import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { maskedCrc32c } from './crc32c.js';
import { encodeEvent } from './summary.js';

/**
 * Frames one record as TFRecord does (tensorflow/core/lib/io/record_writer.cc):
 * `uint64 LE length | uint32 LE masked_crc32c(length bytes) | data | uint32 LE masked_crc32c(data)`.
 * @param data the serialized record (an `Event`)
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/**
 * Splits a TFRecord byte stream into record payloads, verifying both CRCs of each record.
 * A truncated last record (a crash mid-write) ends the stream without error, as
 * TensorBoard's reader does; a CRC mismatch throws.
 * @throws RangeError naming the record offset when a CRC does not match
 */
export function readRecords(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let pos = 0;
  while (pos + 12 <= bytes.length) {
    const lengthCrc = view.getUint32(pos + 8, true);
    if (lengthCrc !== maskedCrc32c(bytes.subarray(pos, pos + 8))) {
      throw new RangeError(`record at byte ${pos}: length CRC mismatch`);
    }
    const length = Number(view.getBigUint64(pos, true));
    if (pos + 12 + length + 4 > bytes.length) break;
    const data = bytes.subarray(pos + 12, pos + 12 + length);
    if (view.getUint32(pos + 12 + length, true) !== maskedCrc32c(data)) {
      throw new RangeError(`record at byte ${pos}: data CRC mismatch`);
    }
    records.push(data);
    pos += 12 + length + 4;
  }
  return records;
}

/** Options of {@link EventFileWriter}. */
export interface EventFileWriterOptions {
  /** Flush once this many bytes are buffered. Default 1 MiB. */
  readonly maxBufferBytes?: number;
  /**
   * Flush on the next write once this many seconds passed since the last flush. Default
   * 120, as torch's `SummaryWriter(flush_secs=120)`. Checked on write instead of by a
   * timer, so an idle writer never keeps the process alive.
   */
  readonly flushSecs?: number;
  /** Appended to the file name (torch's `filename_suffix`). */
  readonly filenameSuffix?: string;
}

/** Per-process counter for the `<n>` of the file name, so two writers never share a file. */
let fileCounter = 0;

/**
 * Appends `Event` records to `<logDir>/events.out.tfevents.<secs>.<host>.<pid>.<n>`.
 *
 * Records are buffered in memory and appended with synchronous writes on {@link flush},
 * {@link close}, or when the buffer/time thresholds are reached, so a crash loses at most
 * the unflushed buffer and never leaves a half-written record behind a flushed one.
 */
export class EventFileWriter {
  /** Full path of the event file. */
  readonly path: string;
  private fd: number | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private lastFlush = Date.now();
  private readonly maxBufferBytes: number;
  private readonly flushMs: number;

  /**
   * Creates `logDir` if needed, opens a new event file and writes (and flushes) the
   * `file_version: "brain.Event:2"` event TensorBoard expects first.
   */
  constructor(logDir: string, options: EventFileWriterOptions = {}) {
    this.maxBufferBytes = options.maxBufferBytes ?? 1 << 20;
    this.flushMs = (options.flushSecs ?? 120) * 1000;
    mkdirSync(logDir, { recursive: true });
    const secs = Math.floor(Date.now() / 1000);
    // torch formats the seconds with %010d; TensorBoard sorts event files by name.
    const name = `events.out.tfevents.${String(secs).padStart(10, '0')}.${hostname()}.${process.pid}.${fileCounter++}`;
    this.path = join(logDir, name + (options.filenameSuffix ?? ''));
    // 'a': appends only, so records already on disk are never rewritten.
    this.fd = openSync(this.path, 'a');
    this.addEvent(encodeEvent({ wallTime: Date.now() / 1000, fileVersion: 'brain.Event:2' }));
    this.flush();
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.fd === undefined;
  }

  /**
   * Buffers one serialized `Event`.
   * @throws Error when the writer is closed
   */
  addEvent(event: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`EventFileWriter for ${this.path} is closed; create a new one to keep writing.`);
    const record = frameRecord(event);
    this.pending.push(record);
    this.pendingBytes += record.length;
    if (this.pendingBytes >= this.maxBufferBytes || Date.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  /** Buffers an `Event{wall_time, step, summary}` around an encoded `Summary`. */
  addSummary(summary: Uint8Array, step: number, wallTime = Date.now() / 1000): void {
    this.addEvent(encodeEvent({ wallTime, step, summary }));
  }

  /** Appends everything buffered to the file. */
  flush(): void {
    this.lastFlush = Date.now();
    if (this.fd === undefined || this.pending.length === 0) return;
    const chunk = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let written = 0;
    // writeSync may write fewer bytes than asked (rare for regular files, but allowed).
    while (written < chunk.length) written += writeSync(this.fd, chunk, written, chunk.length - written);
  }

  /** Flushes and closes the file. Calling it twice is harmless. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }
}
