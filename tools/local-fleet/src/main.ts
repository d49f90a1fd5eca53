#!/usr/bin/env node
/** The local fleet launcher: `up`, `down`, `reset`, `status` (see --help). */
import { ConfigError } from '@pgs/service-kit';
import { down, reset, status } from './down.js';
import { parseArgs } from './options.js';
import { up } from './up.js';

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    say(parsed.text);
    return 0;
  }
  switch (parsed.command) {
    case 'up':
      return up(parsed.options, say);
    case 'down':
      return down(parsed.options, say);
    case 'reset':
      return reset(parsed.options, say);
    case 'status':
      return status(parsed.options, say);
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = err instanceof ConfigError ? 2 : 1;
}
