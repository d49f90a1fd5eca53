/**
 * A coordinator that stops ends its server streams itself (agents, routers, event watchers), so
 * the gRPC server drains at once instead of waiting out the forced cut, and every client sees a
 * clean end of its stream.
 */
import { describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness } from './testing/harness.js';

describe('graceful stop', () => {
  it('returns well before the forced cut with an agent, a router and an event watcher connected', async () => {
    const h = await startHarness();
    const agent = new FakeAgent({ hostId: 'gs1', address: '127.0.0.81', coordinator: h.coordinator.grpcAddress, autoRealize: true });
    await agent.connect();
    await eventually(() => agent.welcomed, 3000, 'agent welcomed');
    // Each stream is known to be open once its first message arrived.
    const seen = { routes: 0, events: 0 };
    const follow = async (stream: AsyncIterable<unknown>, key: keyof typeof seen): Promise<string> => {
      for await (const _ of stream) seen[key]++;
      return 'ended';
    };
    const routesEnded = follow(h.routes.watchRoutes({ routerId: 'r1', sinceRevision: 0n }), 'routes');
    const eventsEnded = follow(h.operator.watchEvents({}), 'events');
    await eventually(() => seen.routes > 0, 3000, 'route snapshot');
    await eventually(
      async () => {
        await h.operator.createTenant({ id: `gs-${Date.now()}` });
        return seen.events > 0;
      },
      3000,
      'an event on the watch',
    );
    await eventually(() => h.coordinator.ctx.hub.isConnected('gs1'), 3000, 'agent attached');
    const start = performance.now();
    await h.coordinator.stop();
    const took = performance.now() - start;
    // The forced cut comes at 2 s; a drained server returns long before it even on a loaded machine.
    expect(took).toBeLessThan(1500);
    // The streams ended cleanly (no error), as a coordinator going away for a restart should end them.
    await expect(routesEnded).resolves.toBe('ended');
    await expect(eventsEnded).resolves.toBe('ended');
    await agent.close();
    h.operator.close();
    h.routes.close();
  });
});
