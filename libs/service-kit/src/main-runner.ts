import { ConfigError } from './config.js';

/**
 * Runs an app's async main: a ConfigError prints its message and exits 2 (usage), anything else
 * prints the error and exits 1, so a bad start is always a clear message and a non-zero code.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
