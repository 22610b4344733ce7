import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventFileWriter, frameRecord, readRecords } from '../../loggers/tensorboard/eventWriter.js';
import { encodeEvent, encodeSummary, scalarValue } from '../../loggers/tensorboard/summary.js';
import { readEventFile } from './eventFile.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lightclip-events-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('frameRecord', () => {
  it('frames "hello" byte-exactly', () => {
    // Expected bytes computed independently in Python (struct + bitwise CRC32C):
    // 05 00.. (uint64 LE) | eab2043e masked crc of length | "hello" | bb1f1c19 masked crc of data.
    expect(hex(frameRecord(new TextEncoder().encode('hello')))).toBe('0500000000000000eab2043e68656c6c6fbb1f1c19');
  });

  it('round-trips through readRecords and detects corruption', () => {
    const a = frameRecord(Uint8Array.of(1, 2, 3));
    const b = frameRecord(new Uint8Array(0));
    const stream = new Uint8Array([...a, ...b]);
    expect(readRecords(stream).map((r) => [...r])).toEqual([[1, 2, 3], []]);
    // A truncated tail (crash mid-write) is dropped, not an error.
    expect(readRecords(stream.subarray(0, stream.length - 2))).toHaveLength(1);
    const bad = stream.slice();
    bad[13] ^= 0xff;
    expect(() => readRecords(bad)).toThrow(/data CRC/);
    const badLen = stream.slice();
    badLen[0] ^= 0x01;
    expect(() => readRecords(badLen)).toThrow(/length CRC/);
  });
});

describe('encodeEvent', () => {
  it('writes wall_time (1, double) and file_version (3, string) byte-exactly', () => {
    expect(hex(encodeEvent({ wallTime: 1.5, fileVersion: 'brain.Event:2' }))).toBe(
      '09000000000000f83f1a0d627261696e2e4576656e743a32',
    );
  });
});

describe('EventFileWriter', () => {
  it('names the file events.out.tfevents.<secs>.<host>.<pid>.<n> and starts with brain.Event:2', () => {
    const before = Math.floor(Date.now() / 1000);
    const w = new EventFileWriter(join(dir, 'run'));
    const parts = basename(w.path).split('.');
    expect(parts.slice(0, 3)).toEqual(['events', 'out', 'tfevents']);
    expect(parts[3]).toMatch(/^\d{10}$/);
    expect(Number(parts[3])).toBeGreaterThanOrEqual(before);
    expect(basename(w.path)).toContain(`.${hostname()}.${process.pid}.`);
    w.close();
    const events = readEventFile(w.path);
    expect(events).toHaveLength(1);
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    expect(events[0]!.wallTime).toBeGreaterThan(before - 1);
  });

  it('gives two writers in the same second different files', () => {
    const a = new EventFileWriter(dir);
    const b = new EventFileWriter(dir);
    expect(a.path).not.toBe(b.path);
    a.close();
    b.close();
  });

  it('buffers until flush, then appends whole records', () => {
    const w = new EventFileWriter(dir);
    const afterHeader = statSync(w.path).size;
    w.addSummary(encodeSummary([scalarValue('loss', 0.25)]), 7, 100);
    expect(statSync(w.path).size).toBe(afterHeader);
    w.flush();
    expect(statSync(w.path).size).toBeGreaterThan(afterHeader);
    w.addSummary(encodeSummary([scalarValue('loss', 0.5)]), 8, 101);
    w.close();
    expect(w.closed).toBe(true);
    w.close(); // harmless twice
    const events = readEventFile(w.path);
    expect(events.map((e) => e.step)).toEqual([0, 7, 8]);
    expect(events[1]!.wallTime).toBe(100);
    expect(events[2]!.values[0]!.float(2)).toBe(0.5);
    expect(() => w.addEvent(new Uint8Array(1))).toThrow(/closed/);
    expect(readRecords(new Uint8Array(readFileSync(w.path)))).toHaveLength(3);
  });

  it('flushes by itself once maxBufferBytes is reached', () => {
    const w = new EventFileWriter(dir, { maxBufferBytes: 64 });
    const size = statSync(w.path).size;
    w.addSummary(encodeSummary([scalarValue('a_rather_long_tag_name_to_pass_the_limit_quickly', 1)]), 1);
    expect(statSync(w.path).size).toBeGreaterThan(size);
    w.close();
  });
});
