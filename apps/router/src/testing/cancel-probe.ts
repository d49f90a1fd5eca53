// Cancelling through the router as a client library does: a CancelRequest with the key the router
// issued, on a new connection to the router.
import net from 'node:net';
import type pg from 'pg';
import { encodeCancelRequest } from '@pgs/wire-protocol';
import { eventually } from './routes.js';

/**
 * Starts `select pg_sleep(30)` on `client`, waits until `admin` sees it running on the server,
 * cancels it through the router at `router`, and returns the SQLSTATE the query ended with.
 */
export async function cancelSleepThroughRouter(client: pg.Client, admin: () => Promise<pg.Client>, router: { host: string; port: number }): Promise<string> {
  const key = client as unknown as { processID: number; secretKey: number };
  const running = client.query('select pg_sleep(30)').then(
    () => 'finished',
    (err: { code?: string }) => err.code ?? 'no code',
  );
  const watcher = await admin();
  await eventually(
    async () => (await watcher.query("select 1 from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")).rowCount === 1,
    10_000,
    'query running',
  );
  await watcher.end();
  const secret = Buffer.alloc(4);
  secret.writeInt32BE(key.secretKey);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: router.host, port: router.port }, () => s.write(encodeCancelRequest(key.processID, secret)));
    s.on('data', () => undefined);
    s.once('error', reject);
    s.once('close', () => resolve());
  });
  return running;
}
