/** Proves a tenant is reachable at the edge: a real TLS connection through a router and SELECT 1. */
import fs from 'node:fs';
import pg from 'pg';

/** Connects to `uri` (TLS verified against caPath) and runs SELECT 1; true on success, throws otherwise. */
export async function checkReachable(uri: string, caPath: string): Promise<true> {
  const url = new URL(uri);
  const client = new pg.Client({
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
    ssl: { ca: fs.readFileSync(caPath, 'utf8') },
    connectionTimeoutMillis: 5000,
  });
  // A refused connection also emits 'error' on the client; the rejected connect() reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}
