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
// Exit once stdout and stderr have flushed rather than when the event loop empties: a gRPC channel
// still connecting to a coordinator whose packets vanish (a partition) would keep pgsctl alive for
// the minutes the kernel spends on the TCP handshake, long after the answer was printed.
const flushed = (stream: NodeJS.WriteStream): Promise<void> => new Promise((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
