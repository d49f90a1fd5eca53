/**
 * An agent stream is read on while its messages wait: a host whose report waits for the store (as
 * behind the backlog of a whole fleet saying Hello at once) is still heard by its heartbeats, and
 * the report is handled after, in order. Before, nothing behind a waiting message was read, and a
 * first start at 30,000 tenants on 300 hosts took every host UNREACHABLE at least once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startHarness, type Harness } from '../testing/harness.js';
import { FakeAgent } from '../testing/fake-agent.js';

describe('an agent stream whose report waits for the store', () => {
  let h: Harness | undefined;
  let agent: FakeAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    await h?.stop();
    agent = undefined;
    h = undefined;
  });

  it('reads the heartbeats sent behind the report, and handles the report once the store answers', async () => {
    h = await startHarness();
    const ctx = h.coordinator.ctx;
    agent = new FakeAgent({ hostId: 'read-h1', address: '127.0.0.1', coordinator: h.coordinator.grpcAddress, heartbeatMs: 50 });
    await agent.connect();
    await eventually(
      async () => (await ctx.store.read.hosts.get('read-h1'))?.state === 'READY' && ctx.liveness.lastSeenAt('read-h1') !== undefined,
      20_000,
      'the host READY and heard',
    );

    // A transaction that holds the store: the report's commit waits behind it.
    let release: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (release = resolve));
    const held = ctx.store.transaction(() => holding);
    try {
      // A report of an instance the coordinator never saw: it is not skipped as unchanged, it needs a commit.
      await agent.report([agent.statusOf('read-orphan', 1n, 20999)]);
      const reportedAt = ctx.clock();
      await eventually(
        () => (ctx.liveness.lastSeenAt('read-h1') ?? 0) > reportedAt + 200,
        20_000,
        'a heartbeat read while the report before it waits for the store',
      );
    } finally {
      release();
      await held;
    }

    // The report was handled after the store answered (its instance is an orphan: an event says so).
    const orphan = await eventually(
      async () => (await ctx.store.read.events.list({ hostId: 'read-h1', limit: 50 })).find((e) => e.action === 'host.orphan_instance'),
      20_000,
      'the waiting report handled',
    );
    expect(orphan.tenantId).toBe('read-orphan');
    expect((await ctx.store.read.hosts.get('read-h1'))?.state).toBe('READY');
  });
});
