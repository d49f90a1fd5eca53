// Encrypted traffic inside the fleet, seen from outside: a replicated tenant's instances refuse a
// plaintext connection from the network and serve TLS that verifies against the fleet CA on their
// host's address (libpq's verify-full); the replica streams from its primary over TLS; clients
// reach the tenant through a router as before; and the fleet status names no plaintext problem.
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { queryOnce } from '../harness/pg-clients.js';
import { ownerLogin, primaryOf } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import { waitFor } from '../harness/poll.js';

/** Connects to an instance directly; the error's SQLSTATE and message, or 'connected'. */
async function direct(config: pg.ClientConfig): Promise<{ code?: string; message: string; ssl?: boolean }> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    const r = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return { message: 'connected', ssl: r.rows[0]?.ssl };
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('TLS inside the fleet', () => {
  const fleet = useFleet({ name: 'inner-tls', block: 33, agents: 2, routers: 1 });

  it('instances refuse plaintext from the network, serve verify-full TLS, replicate over TLS, and clients go through the router as before', async () => {
    const f = fleet();
    const id = tenantName('tls');
    const password = 'inner-tls-secret-1';
    await f.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const primary = await primaryOf(f, id);
    const login = { host: primary.address, port: primary.port, user: id, password, database: id };

    const plain = await direct({ ...login, ssl: false });
    expect(plain.code, plain.message).toBe('28000');
    expect(plain.message).toMatch(/no encryption/);

    const ca = fs.readFileSync(f.security.caFile, 'utf8');
    const verified = await direct({
      ...login,
      ssl: { ca, rejectUnauthorized: true, checkServerIdentity: (_h, cert) => tls.checkServerIdentity(primary.address, cert) },
    });
    expect(verified).toMatchObject({ message: 'connected', ssl: true });
    // The certificate names the host's address, not any other: another host's address fails the check.
    const other = f.hosts.find((h) => h.id !== primary.hostId)!;
    const wrongName = await direct({
      ...login,
      ssl: { ca, rejectUnauthorized: true, checkServerIdentity: (_h, cert) => tls.checkServerIdentity(other.address, cert) },
    });
    expect(wrongName.message).toMatch(/IP: .* is not in the cert's list/);

    // The replica's walreceiver came in over TLS (seen on the primary, over its unix socket).
    const host = f.hosts[primary.hostIndex]!;
    const socketDir = path.join(host.dataRoot, 'instances', id, 'sock');
    await waitFor(
      'the replica streams over TLS',
      async () => {
        const admin = new pg.Client({ host: socketDir, port: primary.port, user: 'postgres', database: 'postgres' });
        await admin.connect();
        try {
          const r = await admin.query<{ ssl: boolean }>('select s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)');
          return r.rows.length === 1 && r.rows[0]!.ssl ? true : undefined;
        } finally {
          await admin.end();
        }
      },
      { timeoutMs: 30_000 },
    );

    const router = f.routers[0]!;
    expect(await queryOnce<{ v: number }>(router.endpoint, ownerLogin(id, password), 'select 41 + 1 as v')).toEqual([{ v: 42 }]);

    const status = (await fetch(`http://${f.coordinatorHttp}/v1/fleet`, { headers: { authorization: f.security.bearer() } }).then((r) => r.json())) as {
      problems: string[];
    };
    expect(status.problems.join('\n')).not.toMatch(/instance TLS is OFF/);
    const metrics = await fetch(`${router.opsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/pgs_router_backend_tls_total\{[^}]*result="tls"[^}]*\} [1-9]/);
    expect(metrics).not.toMatch(/pgs_router_backend_tls_total\{[^}]*result="plaintext"/);
  });
});
