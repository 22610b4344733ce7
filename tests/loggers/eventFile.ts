/**
 * Test helper: reads an event file back independently of `readRecords`, checking the
 * framing and both masked CRCs of every record by hand, then decodes each Event.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { crc32c } from '../../loggers/tensorboard/crc32c.js';
import { ProtoMessage } from '../../loggers/tensorboard/protobuf.js';

export interface DecodedEvent {
  readonly wallTime: number;
  readonly step: number;
  readonly fileVersion: string | undefined;
  /** The Summary.Value messages of the event's summary (empty if none). */
  readonly values: ProtoMessage[];
}

const mask = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** Splits the raw file into payloads, asserting both CRCs of each record and no trailing bytes. */
export function parseRecordsStrict(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const len = Number(view.getBigUint64(pos, true));
    expect(view.getUint32(pos + 8, true)).toBe(mask(crc32c(bytes.subarray(pos, pos + 8))));
    const data = bytes.subarray(pos + 12, pos + 12 + len);
    expect(data.length).toBe(len);
    expect(view.getUint32(pos + 12 + len, true)).toBe(mask(crc32c(data)));
    out.push(data);
    pos += 16 + len;
  }
  expect(pos).toBe(bytes.length);
  return out;
}

/** Decodes every Event of the file at `path`. */
export function readEventFile(path: string): DecodedEvent[] {
  return parseRecordsStrict(new Uint8Array(readFileSync(path))).map((data) => {
    const e = new ProtoMessage(data);
    return {
      wallTime: e.double(1) ?? 0,
      step: e.int(2) ?? 0,
      fileVersion: e.string(3),
      values: e.message(5)?.repeatedMessages(1) ?? [],
    };
  });
}

/** The single `events.out.tfevents.*` file in `dir`. */
export function eventFileIn(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
  expect(files).toHaveLength(1);
  return join(dir, files[0]!);
}
