/** Runs pgsctl as a child process (from its TypeScript source through tsx) and collects its output. */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const MAIN = path.join(import.meta.dirname, '..', 'main.ts');
// Resolved here rather than by name, so a run may use any working directory (`--import tsx` resolves from the cwd).
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** What a pgsctl run printed and how it exited. */
export interface PgsctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `pgsctl args...` with `env` added; `input` is written to stdin. */
export function runPgsctl(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<PgsctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@pgs/source', '--import', TSX, MAIN, ...args], {
      cwd: options.cwd ?? path.dirname(MAIN),
      env: { ...process.env, PGS_COORDINATOR: '', XDG_CONFIG_HOME: path.join(path.dirname(MAIN), 'no-such-config'), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
