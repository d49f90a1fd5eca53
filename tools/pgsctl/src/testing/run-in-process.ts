/** Runs pgsctl in this process (runCli) with captured streams, stdin not a terminal, and a fixed home. */
import { PassThrough } from 'node:stream';
import { runCli } from '../cli.js';

/** What a run printed and its exit code. */
export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

/** Runs `pgsctl args...` against `coordinator` over plaintext gRPC. */
export async function runInProcess(coordinator: string, args: readonly string[], now: () => number = () => Date.now()): Promise<InProcessResult> {
  const stdout = capture();
  const stderr = capture();
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCli(['--coordinator', coordinator, '--insecure', ...args], {
    env: {},
    cwd: '/nonexistent',
    home: '/nonexistent',
    stdout: stdout.stream,
    stderr: stderr.stream,
    stdin,
    now,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
