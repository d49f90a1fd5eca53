/**
 * pgsctl as a process (`node tools/pgsctl/dist/main.js -c <coordinator> -o json ...`): the suite
 * drives the coordinator only through the operator's own tool, never through app internals.
 */
import { execFile } from 'node:child_process';
import { SCRIPTS } from './repo.js';

/** What one pgsctl run produced. */
export interface PgsctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Thrown when pgsctl exits non-zero where the caller expected success. */
export class PgsctlError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: PgsctlResult,
  ) {
    super(`pgsctl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'PgsctlError';
  }
}

/** Runs pgsctl against `coordinator` with `-o json`; never throws for a non-zero exit (see `code`). */
export function runPgsctl(
  coordinator: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string; env?: Readonly<Record<string, string>>; wrapper?: readonly string[] } = {},
): Promise<PgsctlResult> {
  const full = ['-c', coordinator, '-o', 'json', ...args];
  // A wrapper (e.g. `ip netns exec <ns>`) runs pgsctl where an isolated component is.
  const [command, ...prefix] = [...(options.wrapper ?? []), process.execPath];
  return new Promise((resolve, reject) => {
    const child = execFile(
      command as string,
      [...prefix, SCRIPTS.pgsctl, ...full],
      { timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...options.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`pgsctl ${full.join(' ')} could not run: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs pgsctl and parses its JSON output; throws PgsctlError on a non-zero exit. */
export async function pgsctlJson<T>(
  coordinator: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string; env?: Readonly<Record<string, string>> } = {},
): Promise<T> {
  const result = await runPgsctl(coordinator, args, options);
  if (result.code !== 0) throw new PgsctlError(args, result);
  const text = result.stdout.trim();
  return (text === '' ? null : JSON.parse(text)) as T;
}
