import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IsArray, IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsPositive, IsString, Min, ValidateNested } from 'class-validator';
import { afterAll, describe, expect, it } from 'vitest';
import { Describe, loadConfigFile, parseCliFlags, parseConfig, renderConfigHelp, resolveConfig } from '../../core/config.js';
import { MisconfigurationError } from '../../core/errors.js';

class DdpCfg {
  @Describe('Global rank of this process') @IsInt() @Min(0) rank = 0;
  @Describe('Number of processes') @IsInt() @Min(1) world_size = 1;
}

class TrainCfg {
  @Describe('Model config name') @IsString() model_name = 'RN50';
  @Describe('Images per step') @IsInt() @Min(1) batch_size = 8;
  @Describe('Peak learning rate') @IsNumber() @IsPositive() lr = 5e-4;
  @Describe('Run a single batch') @IsBoolean() fast_dev_run = false;
  @Describe('Device') @IsIn(['auto', 'cpu', 'gpu']) accelerator: 'auto' | 'cpu' | 'gpu' = 'auto';
  @Describe('ResNet stage depths') @IsArray() @IsInt({ each: true }) vision_layers: number[] = [3, 4, 6, 3];
  @Describe('Free-form tags') @IsOptional() @IsString({ each: true }) tags?: string[];
  @Describe('Distributed settings') @ValidateNested() ddp: DdpCfg = new DdpCfg();
}

const dir = mkdtempSync(join(tmpdir(), 'lightclip-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MisconfigurationError);
    return err as Error;
  }
  throw new Error('expected a MisconfigurationError');
}

describe('parseCliFlags', () => {
  it('turns flags into a nested plain object', () => {
    expect(parseCliFlags(['--batch_size', '8', '--lr=1e-3', '--fast_dev_run', '--ddp.rank', '1', '--no-shuffle', '--tag', 'a', '--tag', 'b', '--lr2', '-1e-3'])).toEqual({
      batch_size: '8',
      lr: '1e-3',
      fast_dev_run: true,
      ddp: { rank: '1' },
      shuffle: false,
      tag: ['a', 'b'],
      lr2: '-1e-3',
    });
  });

  it('does not let a boolean flag swallow the next argument', () => {
    expect(parseCliFlags(['--filter_NSFW', '--fp', '16'])).toEqual({ filter_NSFW: true, fp: '16' });
    expect(() => parseCliFlags(['--filter_NSFW', 'data/'], { booleanFlags: ['filter-nsfw'] })).toThrow(/Unexpected argument "data\/"/);
    expect(parseCliFlags(['--last'])).toEqual({ last: true });
  });

  it('rejects conflicting and malformed flags', () => {
    expect(() => parseCliFlags(['--ddp', '3', '--ddp.rank', '1'])).toThrow(/`--ddp.rank` conflicts with `--ddp`/);
    expect(() => parseCliFlags(['--a..b', '1'])).toThrow(/Malformed flag/);
  });
});

describe('parseConfig', () => {
  it('fills defaults and converts command-line strings to the declared types', () => {
    const cfg = parseConfig(TrainCfg, parseCliFlags(['--batch_size', '16', '--lr', '1e-3', '--fast-dev-run', 'true', '--vision_layers', '3,4,23,3', '--tags', 'x', '--tags', 'y']), {
      source: 'command line',
    });
    expect(cfg).toBeInstanceOf(TrainCfg);
    expect(cfg.ddp).toBeInstanceOf(DdpCfg);
    expect(cfg).toMatchObject({ model_name: 'RN50', batch_size: 16, lr: 1e-3, fast_dev_run: true, vision_layers: [3, 4, 23, 3], tags: ['x', 'y'], accelerator: 'auto' });
    expect(cfg.ddp).toEqual(Object.assign(new DdpCfg(), { rank: 0, world_size: 1 }));
  });

  it('names the key, the expected type, the value and the source of an ill-typed value', () => {
    expect(errorOf(() => parseConfig(TrainCfg, { batch_size: 'abc' }, { source: 'command line' })).message).toBe(
      '`batch_size` must be an integer ≥ 1, got "abc" (from command line)',
    );
    expect(errorOf(() => parseConfig(TrainCfg, { batch_size: 0 }, { source: 'r.yaml' })).message).toBe('`batch_size` must be an integer ≥ 1, got 0 (from r.yaml)');
    expect(errorOf(() => parseConfig(TrainCfg, { batch_size: 2.5 }, { source: 'r.yaml' })).message).toMatch(/must be an integer ≥ 1, got 2.5/);
    expect(errorOf(() => parseConfig(TrainCfg, { fast_dev_run: 'maybe' }, { source: 'x' })).message).toBe('`fast_dev_run` must be a boolean (true/false), got "maybe" (from x)');
    expect(errorOf(() => parseConfig(TrainCfg, { accelerator: 'tpu' }, { source: 'x' })).message).toBe('`accelerator` must be one of "auto", "cpu", "gpu", got "tpu" (from x)');
    expect(errorOf(() => parseConfig(TrainCfg, { lr: -1 }, { source: 'x' })).message).toBe('`lr` must be a number > 0, got -1 (from x)');
    expect(errorOf(() => parseConfig(TrainCfg, { vision_layers: '3,x' }, { source: 'x' })).message).toMatch(/`vision_layers` must be a list of integers, got "3,x"/);
    expect(errorOf(() => parseConfig(TrainCfg, { ddp: { world_size: '0' } }, { source: 'command line' })).message).toBe(
      '`ddp.world_size` must be an integer ≥ 1, got "0" (from command line)',
    );
    expect(errorOf(() => parseConfig(TrainCfg, { ddp: 3 }, { source: 'x' })).message).toMatch(/`ddp` must be a mapping of rank, world_size, got 3/);
  });

  it('names unknown keys and lists the allowed ones', () => {
    const msg = errorOf(() => parseConfig(TrainCfg, { batch_sise: 8 }, { source: 'command line' })).message;
    expect(msg).toBe('Unknown key `batch_sise` (from command line); allowed keys: model_name, batch_size, lr, fast_dev_run, accelerator, vision_layers, ddp, tags');
    expect(errorOf(() => parseConfig(TrainCfg, { ddp: { rnak: 1 } }, { source: 'f.json' })).message).toBe(
      'Unknown key `ddp.rnak` (from f.json); allowed keys under `ddp`: rank, world_size',
    );
  });

  it('reports every problem at once', () => {
    const msg = errorOf(() => parseConfig(TrainCfg, { foo: 1, batch_size: 'x', lr: 'y' }, { source: 'command line' })).message;
    expect(msg).toMatch(/^3 configuration errors:/);
    expect(msg).toContain('`foo`');
    expect(msg).toContain('`batch_size`');
    expect(msg).toContain('`lr`');
  });
});

describe('config files and precedence', () => {
  it('reads JSON and YAML', () => {
    expect(loadConfigFile(file('a.json', '{"batch_size": 4, "ddp": {"rank": 1}}'))).toEqual({ batch_size: 4, ddp: { rank: 1 } });
    expect(loadConfigFile(file('a.yaml', 'batch_size: 4\nddp:\n  rank: 1\n'))).toEqual({ batch_size: 4, ddp: { rank: 1 } });
    expect(loadConfigFile(file('empty.yml', ''))).toEqual({});
  });

  it('names the file when it cannot be used', () => {
    expect(errorOf(() => loadConfigFile(file('bad.yaml', 'a: [1, 2\n'))).message).toMatch(/bad\.yaml" is not valid YAML/);
    expect(errorOf(() => loadConfigFile(file('bad.json', '{"a": }'))).message).toMatch(/bad\.json" is not valid JSON/);
    expect(errorOf(() => loadConfigFile(file('list.yaml', '- 1\n'))).message).toMatch(/list\.yaml" must hold a mapping/);
    expect(errorOf(() => loadConfigFile(join(dir, 'nope.yaml'))).message).toMatch(/Cannot read config file ".*nope\.yaml"/);
    expect(errorOf(() => loadConfigFile(file('c.toml', ''))).message).toMatch(/must end in \.json, \.yaml or \.yml/);
  });

  it('merges defaults < config file < command line, key by key', () => {
    const yaml = file('recipe.yaml', 'batch_size: 16\nlr: 0.001\nfast_dev_run: true\nddp:\n  world_size: 4\n');
    const json = file('override.json', '{"lr": 0.002}');
    const r = resolveConfig(TrainCfg, ['--config', yaml, '--config', json, '--batch_size', '32', '--ddp.rank', '2', '--no-fast_dev_run']);
    if (r.help) throw new Error('unexpected help');
    expect(r.config).toMatchObject({ model_name: 'RN50', batch_size: 32, lr: 0.002, fast_dev_run: false });
    expect(r.config.ddp).toEqual(Object.assign(new DdpCfg(), { rank: 2, world_size: 4 }));
  });

  it('attributes errors to the file or the command line', () => {
    const yaml = file('bad-values.yaml', 'batch_size: abc\n');
    expect(errorOf(() => resolveConfig(TrainCfg, ['--config', yaml])).message).toBe(`\`batch_size\` must be an integer ≥ 1, got "abc" (from ${yaml})`);
    // The command line overrides the bad value, so the file's value is never used.
    const ok = resolveConfig(TrainCfg, ['--config', yaml, '--batch_size', '2']);
    expect(ok.help === false && ok.config.batch_size).toBe(2);
    expect(errorOf(() => resolveConfig(TrainCfg, ['--config', file('u.yaml', 'epochs: 3\n')])).message).toMatch(/^Unknown key `epochs` \(from .*u\.yaml\)/);
  });

  it('treats boolean fields as value-less flags and answers --help before validating', () => {
    expect(errorOf(() => resolveConfig(TrainCfg, ['--fast_dev_run', 'data/'])).message).toMatch(/Unexpected argument "data\/"/);
    expect(resolveConfig(TrainCfg, ['--batch_size', 'abc', '--help'])).toEqual({ help: true });
    expect(resolveConfig(TrainCfg, ['-h'])).toEqual({ help: true });
  });

  it('accepts --flag, --flag true|false, --flag=false and --no-flag for boolean fields', () => {
    const fastDevRun = (argv: string[]): unknown => {
      const r = resolveConfig(TrainCfg, argv);
      return r.help ? 'help' : r.config.fast_dev_run;
    };
    expect(fastDevRun(['--fast_dev_run'])).toBe(true);
    expect(fastDevRun(['--fast_dev_run', 'true'])).toBe(true);
    expect(fastDevRun(['--fast_dev_run', 'false'])).toBe(false);
    expect(fastDevRun(['--fast_dev_run', 'False', '--batch_size', '4'])).toBe(false);
    expect(fastDevRun(['--fast_dev_run=false'])).toBe(false);
    expect(fastDevRun(['--no-fast_dev_run'])).toBe(false);
    expect(fastDevRun([])).toBe(false);
  });
});

describe('renderConfigHelp', () => {
  it('lists every option with type, description and default', () => {
    const help = renderConfigHelp(TrainCfg, { usage: 'Usage: train [options]', extra: [['--config <file>', 'Recipe file']] });
    const lines = help.split('\n');
    expect(lines[0]).toBe('Usage: train [options]');
    expect(help).toContain('--config <file>');
    expect(lines.find((l) => l.includes('--batch_size'))).toMatch(/^ {2}--batch_size <int> +Images per step \[an integer ≥ 1; default: 8\]$/);
    expect(lines.find((l) => l.includes('--accelerator'))).toMatch(/--accelerator \{auto,cpu,gpu\} +Device \[one of "auto", "cpu", "gpu"; default: "auto"\]/);
    expect(lines.find((l) => l.includes('--fast_dev_run'))).toMatch(/--fast_dev_run +Run a single batch \[a boolean \(true\/false\); default: false\]/);
    expect(lines.find((l) => l.includes('--ddp.world_size'))).toMatch(/--ddp\.world_size <int> +Number of processes \[an integer ≥ 1; default: 1\]/);
    expect(lines.find((l) => l.includes('--vision_layers'))).toMatch(/\[a list of integers; default: \[3,4,6,3\]\]/);
    expect(help).not.toMatch(/--ddp /);
  });
});
