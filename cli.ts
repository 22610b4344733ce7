#!/usr/bin/env node
/**
 * `lightclip`: one entry point for every command (as `corenet-train` / `open_clip_train`).
 * `lightclip <command> ...` imports `commands/<command>.js`, which exports a `description`
 * and `run(argv)` returning the exit code; any module dropped into `commands/` is a new
 * command, listed by `lightclip --help`. A command that throws is reported as the
 * single-purpose CLIs report it (bad input: one `error:` line and exit code 2).
 *
 *   lightclip train --model_name ViT-B/32 --folder data/
 *   lightclip eval zeroshot --weights last.ckpt --model_name ViT-B/32 --data imagenet/val
 */
import 'reflect-metadata';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { reportCliError, runIfMain } from './core/cli.js';
import { MisconfigurationError } from './core/errors.js';
import { packageRoot } from './core/paths.js';

/** What every `commands/<name>` module exports. */
export interface CommandModule {
  description: string;
  run(argv: string[]): Promise<number>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** `.js` after `tsc` (dist/cli.js), `.ts` when the sources run directly (tests). */
const EXT = path.extname(fileURLToPath(import.meta.url));
const COMMANDS_DIR = path.join(HERE, 'commands');
const NAME = /^[a-z][a-z0-9_-]*$/;

/** The names of the commands in `commands/`, sorted. */
export function commandNames(dir = COMMANDS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(EXT) && !f.endsWith(`.d${EXT}`))
    .map((f) => f.slice(0, -EXT.length))
    .filter((n) => NAME.test(n))
    .sort();
}

/** Imports `commands/<name>` and checks it has the command shape. */
export async function loadCommand(name: string, dir = COMMANDS_DIR): Promise<CommandModule> {
  const names = commandNames(dir);
  if (!NAME.test(name) || !names.includes(name)) {
    throw new MisconfigurationError(`Unknown command ${JSON.stringify(name)}; commands: ${names.join(', ') || '(none)'}. See \`lightclip --help\`.`);
  }
  const file = path.join(dir, name + EXT);
  const mod = (await import(pathToFileURL(file).href)) as Partial<CommandModule>;
  if (typeof mod.run !== 'function' || typeof mod.description !== 'string') {
    throw new Error(`${file} is not a lightclip command: it must export \`description: string\` and \`run(argv): Promise<number>\`.`);
  }
  return mod as CommandModule;
}

/** lightclip's version, from its package.json. */
export function version(): string {
  const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

/** The `lightclip --help` text: usage and every command with its description. */
export async function renderHelp(dir = COMMANDS_DIR): Promise<string> {
  const rows: Array<[string, string]> = [];
  for (const name of commandNames(dir)) {
    // One broken command must not hide the others from --help.
    const description = await loadCommand(name, dir).then(
      (c) => c.description,
      (err: unknown) => `(cannot be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
    );
    rows.push([name, description]);
  }
  const width = Math.max('--version'.length, ...rows.map(([n]) => n.length));
  return [
    'usage: lightclip <command> [options]    (lightclip <command> --help for its options)',
    '',
    'Commands:',
    ...rows.map(([n, d]) => `  ${n.padEnd(width)}  ${d}`),
    '',
    'Options:',
    `  ${'--help'.padEnd(width)}  show this help`,
    `  ${'--version'.padEnd(width)}  print lightclip's version`,
    '',
  ].join('\n');
}

/**
 * Runs `lightclip argv...` and returns the exit code (errors are printed, not thrown).
 * @param dir where the commands live (tests point it at their own).
 */
export async function main(argv: readonly string[], dir = COMMANDS_DIR): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === '--version' || command === '-V') {
      console.log(version());
      return 0;
    }
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      // `lightclip help train` = `lightclip train --help`.
      if (command === 'help' && rest[0] !== undefined) return await (await loadCommand(rest[0], dir)).run(['--help']);
      process.stdout.write(await renderHelp(dir));
      return command === undefined ? 2 : 0;
    }
    if (command.startsWith('-')) throw new MisconfigurationError(`Unknown option ${JSON.stringify(command)}: the first argument is a command (\`lightclip --help\` lists them).`);
    return await (await loadCommand(command, dir)).run(rest);
  } catch (err) {
    return reportCliError(err);
  }
}

runIfMain(import.meta.url, async (argv) => {
  process.exitCode = await main(argv);
});
