// Scenarios "lifecycle" and "access switch": a tenant from create to delete through every
// router and every routing form, with its data surviving stop/start, and the external access
// switch taking effect on new connections within one propagation interval.
import { describe, expect, it } from 'vitest';
import { attempt, psql, queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin, tenantPostmasters } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

/** How long a change at the coordinator may take to reach every router in these tests. */
const PROPAGATION_MS = 2_000;

describe('tenant lifecycle through the routers', () => {
  const fleet = useFleet({ name: 'lifecycle', block: 21, agents: 2, routers: 2 });

  it('create -> ACTIVE -> psql as owner.tenant and as the tenant user through every router -> stop/start keeps data -> delete -> unknown tenant', async () => {
    const f = fleet();
    const id = tenantName('life');
    const password = 'life-secret-1';
    const created = await f.createTenant(id, { password });
    expect(created.id).toBe(id);
    const details = await f.tenant(id);
    expect(details.tenant.status).toBe('ACTIVE');
    expect(details.route).toMatchObject({ tenantId: id, state: 'ROUTABLE', externalAccess: true });

    for (const router of f.routers) {
      // psql, the reference client, with the Supavisor-style user.tenant name and with the plain tenant user.
      const dotted = await psql(router.endpoint, ownerLogin(id, password, 'user.tenant'), "select current_user || '@' || current_database()");
      expect(dotted, dotted.stderr).toMatchObject({ code: 0, stdout: `${id}@${id}\n` });
      const plain = await psql(router.endpoint, ownerLogin(id, password), 'select current_user');
      expect(plain, plain.stderr).toMatchObject({ code: 0, stdout: `${id}\n` });
      const viaOptions = await queryOnce<{ u: string }>(router.endpoint, ownerLogin(id, password, 'options'), 'select current_user as u');
      expect(viaOptions).toEqual([{ u: id }]);
    }

    const [r1, r2] = f.routers;
    if (!r1 || !r2) throw new Error('two routers expected');
    await queryOnce(r1.endpoint, ownerLogin(id, password), 'create table notes (id int primary key, body text not null)');
    await queryOnce(r2.endpoint, ownerLogin(id, password), "insert into notes select g, 'note ' || g from generate_series(1, 500) g");

    const stop = await f.pgsctl(['tenant', 'stop', id, '--wait', '--timeout', '60s']);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await f.tenant(id)).tenant.status).toBe('STOPPED');
    expect(tenantPostmasters(f, id)).toEqual([]);
    // A stopped tenant is refused with "cannot connect now", never an empty database elsewhere.
    const whileStopped = await waitUntil(
      'stopped tenant refused',
      () => attempt(r1.endpoint, ownerLogin(id, password)),
      (a) => !a.ok && a.code === '57P03',
      { timeoutMs: PROPAGATION_MS },
    );
    expect(whileStopped).toMatchObject({ ok: false, code: '57P03' });
    if (!whileStopped.ok) expect(whileStopped.message).toMatch(/stopped/);

    const start = await f.pgsctl(['tenant', 'start', id, '--wait', '--timeout', '60s']);
    expect(start.code, start.stderr).toBe(0);
    await f.waitServing(ownerLogin(id, password));
    for (const router of f.routers) {
      const rows = await queryOnce<{ n: string; last: string }>(
        router.endpoint,
        ownerLogin(id, password),
        'select count(*) as n, max(body) filter (where id = 500) as last from notes',
      );
      expect(rows).toEqual([{ n: '500', last: 'note 500' }]);
    }

    const del = await f.pgsctl(['tenant', 'delete', id, '--yes', '--wait', '--timeout', '60s']);
    expect(del.code, del.stderr).toBe(0);
    const gone = await f.pgsctl(['tenant', 'get', id]);
    expect(gone.code).toBe(3); // NOT_FOUND
    for (const router of f.routers) {
      const byUser = await waitUntil(
        'deleted tenant unknown (user name)',
        () => attempt(router.endpoint, ownerLogin(id, password)),
        (a) => !a.ok && a.code === '28000',
        { timeoutMs: PROPAGATION_MS },
      );
      if (!byUser.ok) expect(byUser.message).toBe(`tenant "${id}" does not exist`);
      const byOptions = await attempt(router.endpoint, ownerLogin(id, password, 'options'));
      expect(byOptions).toMatchObject({ ok: false, code: '3D000' });
    }
    await waitUntil(
      `tenant ${id} instance removed`,
      () => tenantPostmasters(f, id),
      (list) => list.length === 0,
      { timeoutMs: 10_000 },
    );
  });

  it('external access: off by default, disable refuses new connections within one propagation interval, enable admits them again', async () => {
    const f = fleet();
    const id = tenantName('acc');
    const password = 'access-secret-1';
    await f.createTenant(id, { password, access: false, wait: false });
    await waitUntil(
      `tenant ${id} ACTIVE`,
      async () => (await f.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    // Seed 000: a tenant is not reachable from outside until someone asks for it.
    const closed = await waitUntil(
      'access disabled at creation',
      () => attempt(router.endpoint, ownerLogin(id, password)),
      (a) => !a.ok && a.code === '28000',
      { timeoutMs: PROPAGATION_MS },
    );
    if (!closed.ok) expect(closed.message).toMatch(/external access .* is disabled/);

    const enable = await f.pgsctl(['tenant', 'access', 'enable', id]);
    expect(enable.code, enable.stderr).toBe(0);
    await f.waitServing(ownerLogin(id, password), PROPAGATION_MS);

    const disable = await f.pgsctl(['tenant', 'access', 'disable', id]);
    expect(disable.code, disable.stderr).toBe(0);
    // pgsctl has exited: the change is committed. Every router must refuse within one interval.
    const committedAt = Date.now();
    const refusals = await Promise.all(
      f.routers.map((r) =>
        waitUntil(
          `router ${r.id} refuses after disable`,
          () => attempt(r.endpoint, ownerLogin(id, password)),
          (a) => !a.ok,
          { timeoutMs: PROPAGATION_MS, intervalMs: 20 },
        ),
      ),
    );
    expect(Date.now() - committedAt).toBeLessThan(PROPAGATION_MS + 500);
    for (const refused of refusals) {
      expect(refused).toMatchObject({ ok: false, code: '28000' });
      if (!refused.ok) expect(refused.message).toMatch(/external access .* is disabled/);
    }

    const again = await f.pgsctl(['tenant', 'access', 'enable', id]);
    expect(again.code, again.stderr).toBe(0);
    await f.waitServing(ownerLogin(id, password), PROPAGATION_MS);
  });
});
