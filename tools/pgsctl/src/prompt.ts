/** Reading from the terminal: a yes/no confirmation and a secret from stdin. */
import type { CliIo } from './context.js';
import { UsageError } from './errors.js';

/** Asks a yes/no question on stderr; only 'y' or 'yes' confirms. Refuses when stdin is not a terminal. */
export async function confirm(io: CliIo, question: string, flagHint: string): Promise<boolean> {
  if (io.stdin.isTTY !== true) {
    throw new UsageError(`${question} needs a confirmation, and stdin is not a terminal`, { hint: `pass ${flagHint} to confirm non-interactively` });
  }
  // Loaded here, not at start-up: Node's readline is several internal modules most commands never use.
  const readline = await import('node:readline');
  const rl = readline.createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(`${question} [y/N] `, resolve));
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** Reads all of stdin and strips one trailing newline (as `echo pw | pgsctl ... --password-stdin` sends it). */
export async function readSecretFromStdin(io: CliIo, flag: string): Promise<string> {
  if (io.stdin.isTTY === true)
    throw new UsageError(`${flag} reads the secret from a pipe, but stdin is a terminal`, { hint: `e.g. printf '%s' "$PW" | pgsctl ... ${flag}` });
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
