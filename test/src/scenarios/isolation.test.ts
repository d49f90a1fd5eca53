// Scenarios "isolation" and "bad input": one tenant's credentials never open another
// tenant through any routing form, instances listen only on their host's address, and a router
// under a burst of garbage and half-open connections keeps serving a good client without errors.
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { holdHalfOpen, malformedPackets, sendAndWaitClose } from '../harness/hostile-clients.js';
import { attempt, connect, queryOnce, type Login } from '../harness/pg-clients.js';
import { canConnect } from '../harness/ports.js';
import { waitFor } from '../harness/poll.js';
import { ownerLogin, primaryOf } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import { TEST_NET } from '../harness/fleet.js';

describe('isolation and hostile input', () => {
  const fleet = useFleet({ name: 'isolation', block: 22, agents: 2, routers: 2 });

  it("tenant A's credentials cannot open tenant B through any routing form, and instances listen only on their host's address", async () => {
    const f = fleet();
    const a = tenantName('iso-a');
    const b = tenantName('iso-b');
    const pa = 'alpha-secret-1';
    const pb = 'bravo-secret-1';
    await Promise.all([f.createTenant(a, { password: pa }), f.createTenant(b, { password: pb })]);
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await queryOnce(router.endpoint, ownerLogin(b, pb), "create table secret as select 'b-only' as v");

    const forms: Array<[string, Login]> = [
      ['A user, B via user.tenant', { user: `${a}.${b}`, password: pa, database: b }],
      ['A user, B via user.tenant, database A', { user: `${a}.${b}`, password: pa, database: a }],
      ['B user with A password', { user: b, password: pa, database: b }],
      ['B user via user.tenant with A password', { user: `${b}.${b}`, password: pa, database: b }],
      ['A user, B via options', { user: a, password: pa, database: b, options: `-c pgs.tenant=${b}` }],
      ['A user.tenant, B via options', { user: `${a}.${a}`, password: pa, database: a, options: `-c pgs.tenant=${b}` }],
      ['A user, database B', { user: a, password: pa, database: b }],
      ['B user, options tenant=B, A password', { user: b, password: pa, database: b, options: `tenant=${b}` }],
    ];
    for (const r of f.routers) {
      for (const [what, login] of forms) {
        const result = await attempt(r.endpoint, login);
        expect(result.ok, `${what} through ${r.id} must be refused`).toBe(false);
        // Refused by the router (28000/3D000) or by B's own server (28P01), never admitted.
        if (!result.ok) expect(['28000', '28P01', '3D000'], `${what}: ${result.code} ${result.message}`).toContain(result.code);
      }
      // The same credentials do open their own tenant.
      expect(await queryOnce<{ d: string }>(r.endpoint, ownerLogin(a, pa), 'select current_database() as d')).toEqual([{ d: a }]);
    }

    for (const id of [a, b]) {
      const p = await primaryOf(f, id);
      const own = f.hosts[p.hostIndex];
      if (!own) throw new Error('host expected');
      expect(p.address).toBe(own.address);
      expect(await canConnect(p.address, p.port), `${id} on its own address`).toBe(true);
      const elsewhere = ['127.0.0.1', `127.${TEST_NET}.22.1`, ...f.hosts.filter((h) => h.id !== p.hostId).map((h) => h.address)];
      for (const addr of elsewhere) expect(await canConnect(addr, p.port), `${id} port ${p.port} must not answer on ${addr}`).toBe(false);
    }
  });

  it('a burst of malformed startup packets and half-open connections leaves a good client querying without errors', async () => {
    const f = fleet();
    const id = tenantName('bad');
    const password = 'bad-input-secret';
    await f.createTenant(id, { password });
    const router = f.routers[1];
    if (!router) throw new Error('router expected');
    const refusedBefore = await protocolViolations(router.opsUrl);

    const good = await connect(router.endpoint, ownerLogin(id, password));
    let queries = 0;
    const errors: unknown[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const r = await good.query<{ n: number }>('select $1::int + 1 as n', [queries]);
          if (r.rows[0]?.n !== queries + 1) errors.push(new Error(`wrong answer ${JSON.stringify(r.rows)} for ${queries}`));
          queries += 1;
        } catch (err) {
          errors.push(err);
          return;
        }
      }
    })();

    const held: net.Socket[] = [];
    try {
      const packets = malformedPackets();
      for (let round = 0; round < 20; round++) {
        // Half-open: silent, or half of a valid-looking startup packet, held open.
        held.push(await holdHalfOpen(router.endpoint, Buffer.alloc(0)));
        held.push(await holdHalfOpen(router.endpoint, Buffer.from([0, 0, 0, 40, 0, 3])));
        const replies = await Promise.all(packets.map((p) => sendAndWaitClose(router.endpoint, p)));
        // Every malformed packet is answered (ErrorResponse 'E') and/or closed, never left hanging.
        for (const r of replies) expect(r.closed || r.reply.length > 0).toBe(true);
      }
      // While the garbage sockets are still held, a fresh good client connects too.
      expect(await queryOnce<{ u: string }>(router.endpoint, ownerLogin(id, password), 'select current_user as u')).toEqual([{ u: id }]);
      // The connected client keeps being served while the garbage is held: 50 queries in all (a
      // count, not a rate, so a slow machine does not fail it; a starved client times out).
      await waitFor('the good client to reach 50 queries beside the held garbage', () => (queries >= 50 || errors.length > 0 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 50,
      });
    } finally {
      running = false;
      await loop;
      await good.end();
      for (const s of held) s.destroy();
    }
    expect(errors).toEqual([]);
    expect(queries).toBeGreaterThanOrEqual(50);
    expect(router.process.running).toBe(true);
    expect(await protocolViolations(router.opsUrl)).toBeGreaterThan(refusedBefore);
  });
});

/** pgs_router_connections_refused_total{reason="protocol_violation"} from a router's /metrics. */
async function protocolViolations(opsUrl: string): Promise<number> {
  const res = await fetch(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith('pgs_router_connections_refused_total') && l.includes('reason="protocol_violation"'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}
