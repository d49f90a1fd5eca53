/**
 * The PostgreSQL store's speed where it matters: tenant creates through group commit (as the API
 * makes them: many callers at once, each one transaction), the same one commit each, and reading
 * 100,000 tenants a page at a time. Against a real server with fsync on, alone or with a
 * synchronous standby (`--pair`: each commit also waits for the standby's flush).
 *
 *   npm run bench:pg-store -w apps/coordinator [-- --pair] [-- --tenants 100000]
 */
import { startTestPostgres, startTestPostgresPair } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { aTenant } from '../src/testing/records.js';
import { openPostgresStore } from '../src/store/postgres/pg-store.js';
import { connectTo } from '../src/store/postgres/pg-connection.js';

const args = process.argv.slice(2);
const pair = args.includes('--pair');
const tenantsFlag = args.indexOf('--tenants');
const TOTAL = tenantsFlag >= 0 ? Number(args[tenantsFlag + 1]) : 100_000;
const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'bench-secret-1';
const CALLERS = 64;
const log = pino({ level: 'silent' });

const durable = { fsync: 'on', synchronous_commit: 'on', shared_buffers: '128MB', max_connections: '100' };
const servers = pair
  ? await startTestPostgresPair({ host: `127.${NET}.37.30`, standbyHost: `127.${NET}.37.31`, users: [{ name: 'coord', password: PW }], settings: durable })
  : await startTestPostgres({ host: `127.${NET}.37.30`, users: [{ name: 'coord', password: PW }], settings: durable });
const url = servers.url('coord', PW);
const store = await openPostgresStore({ url, routeHistory: 100_000, log });

async function creates(n: number, grouped: boolean, prefix: string): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < n) {
        const id = `${prefix}${next++}`;
        await store.transaction(
          async (tx) => {
            await tx.tenants.insert(aTenant(id));
            await tx.events.append({ time: Date.now(), principal: 'bench', action: 'tenant.create', tenantId: id, message: '' });
            tx.record({ kind: 'place', tenantId: id });
          },
          { grouped },
        );
      }
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

try {
  const grouped = await creates(5000, true, 'g');
  const single = await creates(1000, false, 's');
  // The rest of the fleet in one statement: the walk below reads 100,000 tenants, not how they came.
  const c = await connectTo('primary' in servers ? servers.primary.url('coord', PW) : url);
  const spec = JSON.stringify(aTenant('x').spec);
  await c.query(
    `INSERT INTO tenants (id, spec, revision, instance_revision, status, status_reason, deleting, created_at, updated_at)
     SELECT 'bulk' || lpad(i::text, 7, '0'), $1::jsonb, 1, 1, 'NEW', '', false, i, i FROM generate_series(1, $2) i`,
    [spec, Math.max(0, TOTAL - 6000)],
  );
  await c.query('ANALYZE');
  await c.end();
  let after: string | undefined;
  let pages = 0;
  let seen = 0;
  const walkStarted = performance.now();
  for (;;) {
    const page = await store.read.tenants.list({}, { after, limit: 500 });
    if (page.length === 0) break;
    pages++;
    seen += page.length;
    after = page[page.length - 1]?.id;
  }
  const walkMs = performance.now() - walkStarted;
  const waitingStarted = performance.now();
  let cursor: { createdAt: number; id: string } | undefined;
  let waiting = 0;
  for (;;) {
    const page = await store.read.tenants.listWaiting(500, cursor);
    if (page.length === 0) break;
    waiting += page.length;
    const last = page[page.length - 1];
    cursor = last && { createdAt: last.createdAt, id: last.id };
  }
  const waitingMs = performance.now() - waitingStarted;
  const countStarted = performance.now();
  await store.read.tenants.countByStatus();
  const countMs = performance.now() - countStarted;
  console.log(`PostgreSQL store${pair ? ' (with a synchronous standby)' : ''}, fsync on, ${CALLERS} concurrent callers`);
  console.log(`  tenant creates, group commit:    ${grouped.toFixed(0)} /s`);
  console.log(`  tenant creates, one commit each: ${single.toFixed(0)} /s`);
  console.log(`  list ${seen} tenants in pages of 500: ${walkMs.toFixed(0)} ms (${(walkMs / pages).toFixed(1)} ms a page)`);
  console.log(`  backlog walk (${waiting} waiting) in pages of 500: ${waitingMs.toFixed(0)} ms`);
  console.log(`  count by status: ${countMs.toFixed(1)} ms`);
} finally {
  await store.close();
  await servers.stop();
}
