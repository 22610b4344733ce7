import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CSVLogger, parseCsv } from '../../loggers/csv.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lightclip-csv-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const read = (logger: CSVLogger): string => readFileSync(logger.metricsFilePath, 'utf8');

describe('CSVLogger', () => {
  it('writes step plus one sorted column per metric, growing the header by rewriting', () => {
    const logger = new CSVLogger({ saveDir: dir });
    expect(logger.metricsFilePath).toBe(join(dir, 'lightning_logs', 'version_0', 'metrics.csv'));
    logger.logMetrics({ 'train/loss': 2.5 }, 0);
    logger.logMetrics({ 'train/loss': 2 }, 1);
    logger.save();
    expect(read(logger)).toBe('step,train/loss\n0,2.5\n1,2\n');

    // Same keys: appended.
    logger.logMetrics({ 'train/loss': 1.5 }, 2);
    logger.save();
    expect(read(logger)).toBe('step,train/loss\n0,2.5\n1,2\n2,1.5\n');

    // New keys: whole file rewritten with the wider header, old rows blank in new columns.
    logger.logMetrics({ 'val/acc': 0.25, epoch: 0 }, 2);
    logger.logMetrics({ 'train/loss': 1, epoch: 1 }, 3);
    logger.finalize('success');
    expect(read(logger)).toBe(
      'step,epoch,train/loss,val/acc\n0,,2.5,\n1,,2,\n2,,1.5,\n2,0,,0.25\n3,1,1,\n',
    );
  });

  it('flushes every flushLogsEveryNSteps steps and not before', () => {
    const logger = new CSVLogger({ saveDir: dir, flushLogsEveryNSteps: 2 });
    logger.logMetrics({ a: 1 }, 0);
    expect(existsSync(logger.metricsFilePath)).toBe(false);
    logger.logMetrics({ a: 2 }, 1);
    expect(read(logger)).toBe('step,a\n0,1\n1,2\n');
  });

  it('quotes awkward keys and writes nan/inf as Python does', () => {
    const logger = new CSVLogger({ saveDir: dir });
    logger.logMetrics({ 'a,b': NaN, 'say "hi"': Infinity, c: -Infinity }, 0);
    logger.logMetrics({ d: 1 }, 1); // forces a rewrite that must re-parse the quoted header
    logger.save();
    const text = read(logger);
    expect(text).toBe('step,"a,b",c,d,"say ""hi"""\n0,nan,-inf,,inf\n1,,,1,\n');
    expect(parseCsv(text)[0]).toEqual(['step', 'a,b', 'c', 'd', 'say "hi"']);
  });

  it('keeps the rows of an existing metrics.csv when resuming into the same version', () => {
    const first = new CSVLogger({ saveDir: dir, version: 0 });
    first.logMetrics({ loss: 3 }, 0);
    first.finalize('success');
    const resumed = new CSVLogger({ saveDir: dir, version: 0 });
    resumed.logMetrics({ loss: 2, lr: 0.1 }, 1);
    resumed.finalize('success');
    expect(read(resumed)).toBe('step,loss,lr\n0,3,\n1,2,0.1\n');
  });

  it('re-aligns a foreign header order instead of appending misaligned rows', () => {
    const logger = new CSVLogger({ saveDir: dir, version: 'x' });
    writeFileSync(logger.metricsFilePath, 'step,b,a\n0,1,2\n');
    logger.logMetrics({ a: 3, b: 4 }, 1);
    logger.save();
    expect(read(logger)).toBe('step,a,b\n0,2,1\n1,3,4\n');
  });

  it('writes hparams.yaml, merging successive calls, and logs hparams metrics at step 0', () => {
    const logger = new CSVLogger({ saveDir: dir });
    logger.logHyperparams({ lr: 0.001, model: { name: 'RN50', layers: [3, 4, 6, 3] } });
    logger.logHyperparams({ batch_size: 256, fn: () => 1 }, { hp_metric: -1 });
    logger.save();
    const yaml = parse(readFileSync(join(logger.logDir, 'hparams.yaml'), 'utf8')) as unknown;
    expect(yaml).toEqual({ lr: 0.001, model: { name: 'RN50', layers: [3, 4, 6, 3] }, batch_size: 256 });
    expect(read(logger)).toBe('step,hp_metric\n0,-1\n');
  });

  it('does nothing on save with nothing logged', () => {
    const logger = new CSVLogger({ saveDir: dir });
    logger.finalize('success');
    expect(existsSync(join(dir, 'lightning_logs'))).toBe(false);
  });
});
