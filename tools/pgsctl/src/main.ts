#!/usr/bin/env node
/** pgsctl: the operator's CLI for a pgs fleet (see `pgsctl --help`). */
import { runCli } from './cli.js';
import { quietTlsServernameWarning } from './quiet-warnings.js';
import { processSettingsEnv } from './settings.js';

quietTlsServernameWarning();
const code = await runCli(process.argv.slice(2), {
  ...processSettingsEnv(),
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  now: () => Date.now(),
});
// Let stdout drain (a pipe may still hold output) before the exit code is set.
process.exitCode = code;
