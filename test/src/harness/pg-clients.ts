/** Real PostgreSQL clients against the routers: node-postgres, and the psql/pgbench binaries. */
import { execFile } from 'node:child_process';
import pg from 'pg';

/** Where a client connects (a router's listen address, or an instance's). */
export interface Endpoint {
  host: string;
  port: number;
  /**
   * An instance reached directly from the network: TLS, as instances refuse plaintext from the
   * network by default (the certificate is not checked: these probes test data, not TLS).
   */
  instance?: boolean;
}

/** Login of one client connection. */
export interface Login {
  user: string;
  password: string;
  database: string;
  /** Extra startup `options` (e.g. `-c pgs.tenant=acme`). */
  options?: string;
}

/** Opens a node-postgres connection (no TLS to the suite's routers, which run plain TCP; TLS to an instance). */
export async function connect(at: Endpoint, login: Login, connectTimeoutMs = 10_000): Promise<pg.Client> {
  const client = new pg.Client({
    host: at.host,
    port: at.port,
    user: login.user,
    password: login.password,
    database: login.database,
    ...(login.options ? { options: login.options } : {}),
    connectionTimeoutMillis: connectTimeoutMs,
    ssl: at.instance ? { rejectUnauthorized: false } : false,
  });
  // An 'error' event on an idle client (e.g. the server went away) must not crash the test runner.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** Connects, runs one query, disconnects; returns the rows. */
export async function queryOnce<R extends pg.QueryResultRow>(at: Endpoint, login: Login, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = await connect(at, login);
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** How a connection attempt ended: open (closed again at once), or refused with a SQLSTATE. */
export type Attempt = { ok: true } | { ok: false; code: string; message: string };

/** Tries to connect and run `select 1`; a refusal is a value, not an exception. */
export async function attempt(at: Endpoint, login: Login): Promise<Attempt> {
  let client: pg.Client | undefined;
  try {
    client = await connect(at, login);
    await client.query('select 1');
    return { ok: true };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, code: e.code ?? 'NO_SQLSTATE', message: e.message };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/**
 * Runs the psql binary (-X, no password prompt); returns exit code and output. `connectTimeoutSeconds`
 * bounds the connection's start (a client a router holds while its tenant wakes waits inside it).
 */
export function psql(at: Endpoint, login: Login, sql: string, connectTimeoutSeconds = 10): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: login.password, PGCONNECT_TIMEOUT: String(connectTimeoutSeconds), PGSSLMODE: 'disable' };
  if (login.options) env.PGOPTIONS = login.options;
  const args = ['-X', '-w', '-At', '-v', 'ON_ERROR_STOP=1', '-h', at.host, '-p', String(at.port), '-U', login.user, '-d', login.database, '-c', sql];
  return new Promise((resolve, reject) => {
    execFile('psql', args, { env, timeout: Math.max(30_000, (connectTimeoutSeconds + 20) * 1000) }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`psql could not run: ${err.message}`, { cause: err }));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}
