// Real clients for the integration tests: psql and pgbench as processes, node-postgres in-process.
import { spawn } from 'node:child_process';
import pg from 'pg';

/** What a client process did. */
export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (killed after timeoutMs). */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** psql -X -A -t -c <sql> with a libpq connection string; the password via PGPASSWORD. */
export function psql(conninfo: string, sql: string, password: string, env: Record<string, string> = {}): Promise<ProcessResult> {
  return run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql], { PGPASSWORD: password, ...env });
}

/** A connected node-postgres client. */
export async function pgConnect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The error node-postgres raised connecting, with its SQLSTATE. */
export async function pgConnectError(config: pg.ClientConfig): Promise<{ code?: string; message: string; hint?: string; detail?: string }> {
  const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const e = err as { code?: string; message: string; hint?: string; detail?: string };
    return { code: e.code, message: e.message, hint: e.hint, detail: e.detail };
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('connection unexpectedly succeeded');
}
