import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { MisconfigurationError } from './errors.js';

/**
 * Runs `main(process.argv.slice(2))` when the module at `moduleUrl` is the script node was
 * started with (Python's `if __name__ == '__main__'`), so CLIs can also be imported by
 * tests. A `MisconfigurationError` prints one `error: ...` line and exits with 2 (bad
 * usage, as argparse does); anything else prints its stack and exits with 1.
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
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (err instanceof MisconfigurationError) {
      console.error(`error: ${err.message}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  });
}
