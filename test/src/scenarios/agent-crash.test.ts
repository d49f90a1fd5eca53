// Scenario "a crashed agent with a healthy primary costs nothing": the agent of a replicated
// tenant's primary host is killed (SIGKILL: its stream to the coordinator breaks, a reset) while its
// postgres keeps running, and a supervisor starts it again some seconds later. The broken stream is
// one signal only: the replica's walreceiver keeps its sender and routers still connect, so the
// primary is never found gone (which would fail it over at once); the restarted agent adopts the
// same postmaster. No failover starts, writes through the router never fail, and the primary stays
// where it was. The agent stays away at least 6 s, longer than the default --host-lost-confirm
// (5 s), and its restart may take much longer on a loaded machine, so the fleet's confirmation
// window, heartbeat timing and agent lease are stretched far past that: what is shown is that no
// second signal appears, however long the agent is away. (A restarted agent whose lease ran out
// while it was away stops its primaries before it reconnects, as the lease rule says: that primary
// is then really gone, and a failover follows.)
import { describe, expect, it } from 'vitest';
import { queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { RowWriter } from '../harness/row-writer.js';
import { ownerLogin, primaryOf, tenantPostmaster } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

/** Heartbeats as by default (1 s); silence and the confirmation window longer than the agent's absence. */
const TIMING = { heartbeatMs: 1000, hostTtlMs: 60_000, hostDownGraceMs: 90_000 };
const HOST_LOST_CONFIRM_MS = 120_000;
/** Kept below TTL + grace, as the coordinator asks. */
const AGENT_LEASE_MS = 100_000;
/** How long the agent stays away: past the default --host-lost-confirm. */
const AWAY_MS = 6000;

interface EventJson {
  action: string;
  hostId?: string;
}

describe('agent crash with a healthy primary', () => {
  const fleet = useFleet({
    name: 'agentcrash',
    block: 41,
    agents: 2,
    routers: 1,
    timing: TIMING,
    coordinatorArgs: ['--host-lost-confirm', `${HOST_LOST_CONFIRM_MS}ms`, '--agent-lease', `${AGENT_LEASE_MS}ms`],
    readyTimeoutMs: 120_000,
  });

  it('the primary host agent killed and restarted by its supervisor: no failover, no failed write, same postmaster', async () => {
    const f = fleet();
    const id = tenantName('crash');
    const password = 'crash-secret-1';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await waitUntil(
      `replica of ${id} streaming`,
      async () => (await f.tenant(id)).tenant.placements as unknown as Array<{ role: string; health: { up: boolean; role: string } | null }>,
      (ms) => ms.some((m) => m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await queryOnce(router.endpoint, login, 'create table acked (id int primary key)');
    const primary = await primaryOf(f, id);
    const postmaster = tenantPostmaster(f, primary.hostIndex, id);
    expect(postmaster, 'postmaster of the primary under its host data root').toBeDefined();

    // One writer on a kept session, and new sessions through the router every 200 ms (a refused
    // backend connect would show there at once).
    const writer = new RowWriter(router.endpoint, login, { table: 'acked', connectTimeoutMs: 2000 });
    writer.start();
    await waitUntil(
      'writes flowing',
      () => writer.acked.length,
      (n) => n >= 20,
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    let probing = true;
    const probeFailures: string[] = [];
    let probes = 0;
    const prober = (async (): Promise<void> => {
      while (probing) {
        try {
          await queryOnce(router.endpoint, login, 'select 1');
          probes += 1;
        } catch (err) {
          probeFailures.push(String((err as { code?: string }).code ?? err));
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const killedAt = Date.now();
    await f.killAgent(primary.hostIndex, 'SIGKILL');
    // The coordinator saw the break (a reset makes the host UNREACHABLE at once): a suspect, nothing more.
    await waitUntil(
      `host ${primary.hostId} suspect after the break`,
      () => f.hostStates(),
      (s) => s[primary.hostId] === 'UNREACHABLE',
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const suspectedMs = Date.now() - killedAt;
    // Away past the default confirmation window: no replica or router reports the primary gone.
    await waitUntil(
      'the agent away',
      () => Date.now() - killedAt,
      (ms) => ms >= AWAY_MS,
      { timeoutMs: AWAY_MS + 5_000, intervalMs: 100 },
    );
    await f.restartAgent(primary.hostIndex);
    const restartedMs = Date.now() - killedAt;
    await waitUntil(
      `host ${primary.hostId} READY again`,
      () => f.hostStates(),
      (s) => s[primary.hostId] === 'READY',
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const ackedBefore = writer.acked.length;
    await waitUntil(
      'writes continue',
      () => writer.acked.length,
      (n) => n >= ackedBefore + 20,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    await writer.stop();
    probing = false;
    await prober;
    console.log(
      `agent crash: suspected after ${suspectedMs} ms, agent back after ${restartedMs} ms; ${writer.acked.length} writes acknowledged, ${writer.failures.length} failed; ${probes} new sessions, ${probeFailures.length} failed`,
    );

    const events = await f.pgsctlJson<EventJson[]>(['events', '--tenant', id, '--limit', '500']);
    expect(events.map((e) => e.action).filter((a) => a.startsWith('failover.'))).toEqual([]);
    expect(writer.failures.filter((x) => x.at >= killedAt)).toEqual([]);
    expect(probeFailures).toEqual([]);
    expect((await primaryOf(f, id)).hostId).toBe(primary.hostId);
    expect((await f.tenant(id)).tenant.status).toBe('ACTIVE');
    expect(tenantPostmaster(f, primary.hostIndex, id)?.pid).toBe(postmaster?.pid);
    const rows = await queryOnce<{ n: string }>(router.endpoint, login, 'select count(*)::text as n from acked');
    expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(writer.acked.length);
  }, 300_000);
});
