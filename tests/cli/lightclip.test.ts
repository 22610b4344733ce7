import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main as lightclip, commandNames } from '../../cli.js';
import { buildForWorkers, CLI_SOURCES } from '../strategies/fixtures/build.js';
import { spawnNode } from '../strategies/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

let out: string[];
let err: string[];
beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
});
afterEach(() => vi.restoreAllMocks());

describe('lightclip <command>', () => {
  it('--version prints package.json\'s version; --help lists every command with its description', async () => {
    expect(await lightclip(['--version'])).toBe(0);
    expect(out.join('')).toBe(manifest.version);
    out.length = 0;
    expect(await lightclip(['--help'])).toBe(0);
    const help = out.join('');
    expect(help).toMatch(/^usage: lightclip <command>/);
    expect(help).toMatch(/^ {2}train +train a CLIP model/m);
    expect(help).toMatch(/^ {2}eval +evaluate weights/m);
  });

  it('finds any commands/<name> module by name and passes it the rest of argv', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-commands-'));
    fs.writeFileSync(path.join(dir, 'hello.ts'), "export const description = 'says hello';\nexport async function run(argv) { console.log('hello ' + argv.join(',')); return 7; }\n");
    fs.writeFileSync(path.join(dir, 'broken.ts'), 'export const x = 1;\n');
    expect(commandNames(dir)).toEqual(['broken', 'hello']);
    expect(await lightclip(['--help'], dir)).toBe(0);
    expect(out.join('')).toMatch(/^ {2}broken +\(cannot be loaded: .*broken\.ts is not a lightclip command/m);
    expect(out.join('')).toMatch(/^ {2}hello +says hello$/m);
    out.length = 0;
    expect(await lightclip(['hello', '--a', '1'], dir)).toBe(7);
    expect(out).toContain('hello --a,1');
    expect(await lightclip(['broken'], dir)).toBe(1);
    expect(err.join('\n')).toMatch(/broken\.ts is not a lightclip command/);
    expect(await lightclip(['nope'], dir)).toBe(2);
    expect(err.join('\n')).toMatch(/Unknown command "nope"; commands: broken, hello/);
    expect(await lightclip(['../train'], dir)).toBe(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--help per subcommand names the one command; bad flags exit 2 with one error line', async () => {
    expect(await lightclip(['train', '--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/^usage: lightclip train --model_name/);
    expect(out.join('\n')).toContain('--accumulate_grad_batches');
    out.length = 0;
    expect(await lightclip(['eval', 'zeroshot', '--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/^usage: lightclip eval zeroshot --weights/);
    out.length = 0;
    expect(await lightclip(['help', 'eval'])).toBe(0);
    expect(out.join('\n')).toMatch(/usage: lightclip eval <zeroshot\|embed>/);
    expect(await lightclip(['train', '--bogus', '1'])).toBe(2);
    expect(err.at(-1)).toMatch(/^error: Unknown key `bogus`/);
    expect(await lightclip(['--frobnicate'])).toBe(2);
  });
});

describe('the lightclip executable', () => {
  it('package.json bin has lightclip → dist/cli.js next to lightclip-train/-eval; the built cli runs as a process', async () => {
    expect(manifest.bin).toMatchObject({ lightclip: 'dist/cli.js', 'lightclip-train': 'dist/train.js', 'lightclip-eval': 'dist/eval.js' });
    expect(fs.readFileSync(path.join(ROOT, 'cli.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const build = await buildForWorkers([...CLI_SOURCES, 'cli.ts', 'commands']);
    const version = spawnNode([path.join(build, 'cli.js'), '--version'], {});
    expect((await version.exit).code, version.err()).toBe(0);
    expect(version.out().trim()).toBe(manifest.version);
    const help = spawnNode([path.join(build, 'cli.js'), 'eval', 'embed', '--help'], {});
    expect((await help.exit).code, help.err()).toBe(0);
    expect(help.out()).toMatch(/usage: lightclip eval embed/);
    const bad = spawnNode([path.join(build, 'cli.js'), 'train', '--batch_size', 'x'], {});
    expect((await bad.exit).code).toBe(2);
    expect(bad.err()).toMatch(/^error: `batch_size` must be/m);
  });
});
