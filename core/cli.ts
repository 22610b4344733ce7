import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { MisconfigurationError } from './errors.js';

/** Error classes (by name, to keep this file free of imports from above core) that report bad input. */
const USER_ERRORS = new Set(['StateDictError', 'SafetensorsError', 'UnsafePickleError', 'TorchCheckpointError', 'HubDownloadError']);

/**
 * Runs `main(process.argv.slice(2))` when the module at `moduleUrl` is the script node was
 * started with (Python's `if __name__ == '__main__'`), so CLIs can also be imported by
 * tests. Bad input (a `MisconfigurationError`, or a weights file that does not fit) prints
 * one `error: ...` line and exits with 2, as argparse does; anything else prints its stack
 * and exits with 1.
 */
export function runIfMain(moduleUrl: string, main: (argv: readonly string[]) => Promise<unknown>): void {
  const script = process.argv[1];
  if (!script) return;
  let resolved = script;
  try {
    resolved = realpathSync(script); // `npx`/bin links point at the real file
  } catch {
    // keep the given path
  }
  if (moduleUrl !== pathToFileURL(resolved).href && moduleUrl !== pathToFileURL(script).href) return;
  main(process.argv.slice(2)).catch((err: unknown) => process.exit(reportCliError(err)));
}

/**
 * Prints a CLI failure and returns its exit code. Bad input (flags, configs, weight files
 * that do not fit) is the user's to fix: one `error: ...` line, no stack, code 2 (as
 * argparse); anything else prints its stack, code 1.
 */
export function reportCliError(err: unknown): number {
  if (err instanceof MisconfigurationError || (err instanceof Error && USER_ERRORS.has(err.name))) {
    console.error(`error: ${err.message}`);
    return 2;
  }
  console.error(err);
  return 1;
}
