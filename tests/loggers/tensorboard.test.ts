import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { create, isRegistered, listRegistered } from '../../core/registry.js';
import { CSVLogger, TensorBoardLogger } from '../../loggers/index.js';
import { encodePng, PNG_SIGNATURE } from '../../loggers/tensorboard/png.js';
import type { ProtoMessage } from '../../loggers/tensorboard/protobuf.js';
import { eventFileIn, readEventFile, type DecodedEvent } from './eventFile.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lightclip-tb-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** [step, Summary.Value] pairs of every event whose summary has a value with `tag`. */
function valuesOf(events: DecodedEvent[], tag: string): Array<[number, ProtoMessage]> {
  return events.flatMap((e) => e.values.filter((v) => v.string(1) === tag).map((v): [number, ProtoMessage] => [e.step, v]));
}

/** The hparams plugin content (HParamsPluginData) of a Summary.Value. */
function hparamsContent(v: ProtoMessage): ProtoMessage {
  const pluginData = v.message(9)!.message(1)!;
  expect(pluginData.string(1)).toBe('hparams');
  const content = pluginData.message(2)!;
  expect(content.has(1)).toBe(false); // version 0: the only one the plugin accepts
  return content;
}

describe('TensorBoardLogger', () => {
  it('writes scalars, histogram, images, text and hparams that read back exactly', async () => {
    const logger = new TensorBoardLogger({ saveDir: dir });
    expect(logger.name).toBe('lightning_logs');
    expect(logger.logDir).toBe(join(dir, 'lightning_logs', 'version_0'));

    logger.logHyperparams({ lr: 5e-4, model: 'ViT-B/32', optim: { betas: [0.9, 0.98], amsgrad: false }, skip: undefined });
    logger.logMetrics({ 'train/loss': 0.1, acc: 0.75 }, 3);
    logger.logMetrics({ 'train/loss': 0 }, 4);
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    logger.addHistogram('weights', values, 5);
    logger.addHistogram('uniform', values, 5, 10);
    const pixels = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 29) % 256);
    logger.addImage('img', { width: 4, height: 3, channels: 3, data: pixels }, 6);
    const rgba = Uint8Array.from({ length: 2 * 2 * 4 }, (_, i) => i * 15);
    logger.addImage('png', encodePng({ width: 2, height: 2, channels: 4, data: rgba }), 6);
    logger.addText('notes', 'hello **world** ✓', 7);
    logger.finalize('success');

    const events = readEventFile(eventFileIn(logger.logDir));
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    for (const e of events) expect(Math.abs(e.wallTime - Date.now() / 1000)).toBeLessThan(60);

    // Scalars: simple_value (field 2) rounded to float32; 0 is still written (oneof member).
    expect(valuesOf(events, 'train/loss').map(([s, v]) => [s, v.float(2)])).toEqual([[3, Math.fround(0.1)], [4, 0]]);
    expect(valuesOf(events, 'acc').map(([s, v]) => [s, v.float(2)])).toEqual([[3, 0.75]]);
    expect(valuesOf(events, 'hp_metric').map(([s, v]) => [s, v.float(2)])).toEqual([[0, -1]]);

    // Histograms: HistogramProto in field 5, counts summing to the number of values.
    for (const tag of ['weights', 'uniform']) {
      const [[step, v]] = valuesOf(events, tag) as [[number, ProtoMessage]];
      expect(step).toBe(5);
      const h = v.message(5)!;
      const buckets = h.packedDoubles(7);
      const limits = h.packedDoubles(6);
      expect(buckets.reduce((a, b) => a + b, 0)).toBe(1000);
      expect(limits.length).toBe(buckets.length);
      expect(h.double(3)).toBe(1000);
      expect(h.double(1)).toBe(Math.min(...values));
      expect(h.double(2)).toBe(Math.max(...values));
      expect(h.double(4)).toBeCloseTo(values.reduce((a, b) => a + b, 0), 9);
      expect(h.double(5)).toBeCloseTo(values.reduce((a, b) => a + b * b, 0), 6);
      expect(limits.every((l, i) => i === 0 || l > limits[i - 1]!)).toBe(true);
    }
    expect(valuesOf(events, 'uniform')[0]![1].message(5)!.packedDoubles(7).length).toBe(11);

    // Images: Summary.Image in field 4 holding a PNG that decodes to the pixels.
    const [[imgStep, img]] = valuesOf(events, 'img') as [[number, ProtoMessage]];
    expect(imgStep).toBe(6);
    const image = img.message(4)!;
    expect([image.int(1), image.int(2), image.int(3)]).toEqual([3, 4, 3]);
    const png = image.bytes(4)!;
    expect([...png.subarray(0, 8)]).toEqual([...PNG_SIGNATURE]);
    const decoded = await sharp(Buffer.from(png)).raw().toBuffer({ resolveWithObject: true });
    expect([decoded.info.width, decoded.info.height, decoded.info.channels]).toEqual([4, 3, 3]);
    expect([...decoded.data]).toEqual([...pixels]);
    const pngImage = valuesOf(events, 'png')[0]![1].message(4)!;
    expect([pngImage.int(1), pngImage.int(2), pngImage.int(3)]).toEqual([2, 2, 4]);
    const rgbaDecoded = await sharp(Buffer.from(pngImage.bytes(4)!)).raw().toBuffer();
    expect([...rgbaDecoded]).toEqual([...rgba]);

    // Text: tensor (8) of DT_STRING (7), shape [1], string_val (8); metadata plugin "text".
    const [[textStep, text]] = valuesOf(events, 'notes/text_summary') as [[number, ProtoMessage]];
    expect(textStep).toBe(7);
    const tensor = text.message(8)!;
    expect(tensor.int(1)).toBe(7);
    expect(tensor.message(2)!.repeatedMessages(2).map((d) => d.int(1))).toEqual([1]);
    expect(tensor.repeatedBytes(8).map((b) => new TextDecoder().decode(b))).toEqual(['hello **world** ✓']);
    expect(text.message(9)!.message(1)!.string(1)).toBe('text');

    // hparams: the three plugin tags, each in its own event at step 0.
    const exp = hparamsContent(valuesOf(events, '_hparams_/experiment')[0]![1]).message(2)!;
    const infos = exp.repeatedMessages(4).map((h) => [h.string(1), h.int(4)]);
    expect(infos).toEqual([
      ['lr', 3],
      ['model', 1],
      ['optim/betas', 1],
      ['optim/amsgrad', 2],
    ]);
    expect(exp.repeatedMessages(5).map((m) => m.message(1)!.string(2))).toEqual(['hp_metric']);
    const ssi = hparamsContent(valuesOf(events, '_hparams_/session_start_info')[0]![1]).message(3)!;
    const hp = Object.fromEntries(
      ssi.repeatedMessages(1).map((entry) => {
        const v = entry.message(2)!;
        return [entry.string(1), v.double(2) ?? v.string(3) ?? (v.has(4) ? v.int(4) === 1 : undefined)];
      }),
    );
    expect(hp).toEqual({ lr: 5e-4, model: 'ViT-B/32', 'optim/betas': '[0.9,0.98]', 'optim/amsgrad': false });
    expect(Math.abs(ssi.double(5)! - Date.now() / 1000)).toBeLessThan(60);
    const sei = hparamsContent(valuesOf(events, '_hparams_/session_end_info')[0]![1]).message(4)!;
    expect(sei.int(1)).toBe(1); // STATUS_SUCCESS

    // hparams.yaml keeps the nested, unflattened params.
    const yaml = parse(readFileSync(join(logger.logDir, 'hparams.yaml'), 'utf8')) as unknown;
    expect(yaml).toEqual({ lr: 5e-4, model: 'ViT-B/32', optim: { betas: [0.9, 0.98], amsgrad: false } });
  });

  it('writes no hparams summaries without metrics when defaultHpMetric is false', () => {
    const logger = new TensorBoardLogger({ saveDir: dir, defaultHpMetric: false, prefix: 'p' });
    logger.logHyperparams({ a: 1 });
    logger.logMetrics({ x: 2 }, 1);
    logger.finalize('success');
    const events = readEventFile(eventFileIn(logger.logDir));
    expect(events.flatMap((e) => e.values.map((v) => v.string(1)))).toEqual(['p-x']);
    expect(existsSync(join(logger.logDir, 'hparams.yaml'))).toBe(true);
  });

  it('accepts tfjs tensors for histograms and images', async () => {
    const { tf } = await import('../../core/tf.js');
    const logger = new TensorBoardLogger({ saveDir: dir, name: '' });
    const img = tf.tensor3d([[[1, 0, 0], [0, 1, 0]]], [1, 2, 3], 'float32');
    logger.addImage('t', img, 1);
    logger.addHistogram('h', tf.tensor1d([1, 2, 3, 4]), 1, 2);
    logger.finalize('success');
    expect(logger.logDir).toBe(join(dir, 'version_0'));
    const events = readEventFile(eventFileIn(logger.logDir));
    const png = valuesOf(events, 't')[0]![1].message(4)!.bytes(4)!;
    expect([...(await sharp(Buffer.from(png)).raw().toBuffer())]).toEqual([255, 0, 0, 0, 255, 0]);
    expect(valuesOf(events, 'h')[0]![1].message(5)!.packedDoubles(7)).toEqual([0, 2, 2]);
  });

  it('rejects bad images with a message naming the tag', () => {
    const logger = new TensorBoardLogger({ saveDir: dir });
    expect(() => logger.addImage('x', Uint8Array.of(1, 2, 3), 0)).toThrow(/addImage\(`x`\): bytes must be a PNG/);
    expect(() => logger.addImage('y', { width: 2, height: 2, channels: 3, data: new Uint8Array(3) }, 0)).toThrow(MisconfigurationError);
    logger.finalize('failed');
  });

  it('opens a new event file when written to after finalize', () => {
    const logger = new TensorBoardLogger({ saveDir: dir });
    logger.addScalar('a', 1, 0);
    logger.finalize('success');
    logger.addScalar('a', 2, 1);
    logger.finalize('success');
    const files = readdirSync(logger.logDir).filter((f) => f.startsWith('events.out.tfevents.')).sort();
    expect(files).toHaveLength(2);
    const steps = files.flatMap((f) => readEventFile(join(logger.logDir, f)).slice(1).map((e) => e.step));
    expect(steps.sort()).toEqual([0, 1]);
  });
});

describe('versioned directories', () => {
  it('take the next free version_N, per logger', () => {
    const a = new TensorBoardLogger({ saveDir: dir });
    const b = new TensorBoardLogger({ saveDir: dir });
    const c = new CSVLogger({ saveDir: dir });
    expect([a.version, b.version, c.version]).toEqual([0, 1, 2]);
    expect(existsSync(join(dir, 'lightning_logs', 'version_1'))).toBe(true);
    expect(new TensorBoardLogger({ saveDir: dir, version: 7 }).logDir).toBe(join(dir, 'lightning_logs', 'version_7'));
    expect(new CSVLogger({ saveDir: dir }).version).toBe(8);
    const named = new CSVLogger({ saveDir: dir, name: 'exp', version: 'my_run' });
    expect([named.version, named.logDir]).toEqual(['my_run', join(dir, 'exp', 'my_run')]);
    expect(new CSVLogger({ saveDir: dir, name: 'exp' }).version).toBe(0);
  });

  it('do not create anything until first used', () => {
    const logger = new TensorBoardLogger({ saveDir: join(dir, 'lazy') });
    expect(existsSync(join(dir, 'lazy'))).toBe(false);
    logger.finalize('success');
    expect(existsSync(join(dir, 'lazy'))).toBe(false);
  });
});

describe('registry and options', () => {
  it('registers tensorboard and csv', () => {
    expect(isRegistered('logger', 'tensorboard')).toBe(true);
    expect(listRegistered('logger')).toEqual(expect.arrayContaining(['csv', 'tensorboard']));
    expect(create('logger', 'tensorboard', { saveDir: dir })).toBeInstanceOf(TensorBoardLogger);
    expect(create('logger', 'csv', { saveDir: dir, flushLogsEveryNSteps: 5 })).toBeInstanceOf(CSVLogger);
  });

  it('rejects invalid options naming the option and the value', () => {
    expect(() => create('logger', 'tensorboard', {})).toThrow(/`saveDir` must be a non-empty path, got undefined/);
    expect(() => create('logger', 'csv', { saveDir: dir, version: -1 })).toThrow(/`version` must be a non-negative integer .* got -1/);
    expect(() => create('logger', 'csv', { saveDir: dir, versoin: 1 })).toThrow(/Unknown CSVLogger option `versoin`/);
    expect(() => create('logger', 'tensorboard', { saveDir: dir, flushSecs: 0 })).toThrow(/`flushSecs` must be a positive number of seconds, got 0/);
    expect(() => create('logger', 'csv', { saveDir: dir, flushLogsEveryNSteps: 1.5 })).toThrow(MisconfigurationError);
  });
});
