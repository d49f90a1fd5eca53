/**
 * Where the store's primary is. A store URL may name several servers, as libpq's multi-host form
 * does (`postgres://user:pw@h1:5432,h2:5432/db`): the primary and its standby. The store connects to
 * the one that is not in recovery, and looks again whenever its connection is lost, so a promoted
 * standby is found without restarting the coordinator.
 */
import pg from 'pg';
import { StoreUnavailableError } from '../../domain/errors.js';
import { PG_TYPES } from './pg-rows.js';

/** One URL per server named in `url`, each with the same user, password, database and parameters. */
export function splitStoreUrl(url: string): string[] {
  const m = /^(postgres(?:ql)?:\/\/)([^@/]*@)?([^/?#]*)(.*)$/.exec(url);
  if (!m) throw new Error('the store URL must look like postgres://user:password@host:port[,host:port...]/database');
  const [, scheme = '', auth = '', hosts = '', rest = ''] = m;
  const list = hosts.split(',').filter((h) => h.length > 0);
  if (list.length === 0) throw new Error('the store URL names no server: postgres://user:password@host:port/database');
  return list.map((h) => `${scheme}${auth}${h}${rest}`);
}

/** The URL without its password, for logs and /healthz. */
export function redactStoreUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

/**
 * Connection settings every store connection gets. A transaction never waits on anything but the
 * store (no I/O inside one), so one idle for 2 s belongs to a coordinator that hung or was cut
 * off: the server ends it, releasing its locks (the lease row's share lock among them) so the
 * next leader is not held up by it.
 */
export function clientConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types: PG_TYPES,
    application_name: 'pgs-coordinator',
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    idle_in_transaction_session_timeout: 2000,
  };
}

/** Opens a connection to `url` whose errors after connecting are left to the next query to report. */
export async function connectTo(url: string): Promise<pg.Client> {
  const c = new pg.Client(clientConfig(url));
  c.on('error', () => undefined); // a broken connection fails its next query, which the store handles
  await c.connect();
  return c;
}

/**
 * Connects to the server among `urls` that takes writes (not in recovery) and keeps the connection
 * that found it: one connect, not a probe and then another (on a loaded machine a connect is what
 * takes longest).
 */
export async function connectPrimary(urls: readonly string[]): Promise<{ url: string; client: pg.Client }> {
  const seen: string[] = [];
  for (const url of urls) {
    let c: pg.Client | undefined;
    try {
      c = await connectTo(url);
      const r = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (r.rows[0]?.r === false) {
        const client = c;
        c = undefined;
        return { url, client };
      }
      seen.push(`${redactStoreUrl(url)}: a standby`);
    } catch (err) {
      seen.push(`${redactStoreUrl(url)}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await c?.end().catch(() => undefined);
    }
  }
  throw new StoreUnavailableError(`no primary among the store's servers (${seen.join('; ')})`);
}

/** Finds the server among `urls` that takes writes (not in recovery). */
export async function findPrimary(urls: readonly string[]): Promise<string> {
  const { url, client } = await connectPrimary(urls);
  await client.end().catch(() => undefined);
  return url;
}
