/**
 * The REST reads the dashboard needs, on a coordinator with security on: /ui and its headers,
 * /v1/hosts, /v1/events and the server-sent event stream (live, replay after an id, tenant scope
 * and the token rules of WatchEvents).
 */
import { CoordinatorService } from '@pgs/proto';
import type { Client } from '@pgs/rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './testing/harness.js';
import { startSecureHarness, type SecureHarness } from './testing/secure-harness.js';

let h: SecureHarness;
let admin: Client<typeof CoordinatorService>;

beforeAll(async () => {
  h = await startSecureHarness();
  admin = h.operator(h.adminToken);
}, 60_000);

afterAll(async () => {
  await h?.stop();
});

const url = (p: string): string => `http://${h.coordinator.httpAddress}${p}`;
const get = (p: string, token: string | null = h.adminToken): Promise<Response> =>
  fetch(url(p), { headers: token ? { authorization: `Bearer ${token}` } : {} });

interface StreamEvent {
  type: string;
  data: { id?: number; action?: string; tenant?: string; after?: number };
}

/** Reads an event stream into `out` until aborted. */
async function readStream(p: string, token: string, signal: AbortSignal, out: StreamEvent[]): Promise<Response> {
  const res = await fetch(url(p), { headers: { authorization: `Bearer ${token}` }, signal });
  if (!res.ok || !res.body) return res;
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (type && data) out.push({ type, data: JSON.parse(data) as StreamEvent['data'] });
        }
      }
    } catch {
      // Aborted by the test.
    }
  })();
  return res;
}

describe('dashboard files', () => {
  it('serves /ui, its script and style with content types and a strict CSP, no token needed', async () => {
    for (const [p, type] of [
      ['/ui', 'text/html'],
      ['/ui/', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
      ['/ui/app.css', 'text/css'],
    ] as const) {
      const res = await fetch(url(p));
      expect(res.status, p).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const html = await (await fetch(url('/ui'))).text();
    expect(html).toContain('src="/ui/app.js"');
    // No inline script or style: the CSP would refuse them.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style="/);
    expect((await fetch(url('/ui/other.js'))).status).toBe(404);
    expect((await fetch(url('/ui/app.js'), { method: 'POST' })).status).toBe(405);
  });
});

describe('dashboard REST reads', () => {
  it('lists hosts and events with the token rules of ListHosts and ListEvents', async () => {
    expect((await get('/v1/hosts', null)).status).toBe(401);
    expect((await get('/v1/events', 'not-a-token')).status).toBe(401);
    expect(await (await get('/v1/hosts')).json()).toEqual({ hosts: [] });
    await admin.createTenant({ id: 'dash-a', ownerPassword: 'dash-a-password' });
    await admin.createTenant({ id: 'dash-b', ownerPassword: 'dash-b-password' });
    const all = (await (await get('/v1/events?limit=1000')).json()) as { events: { id: number; action: string; tenant: string }[] };
    expect(all.events.filter((e) => e.action === 'tenant.create').map((e) => e.tenant)).toEqual(expect.arrayContaining(['dash-a', 'dash-b']));
    const ids = all.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const onlyA = (await (await get('/v1/events?tenant=dash-a')).json()) as { events: { tenant: string }[] };
    expect(onlyA.events.length).toBeGreaterThan(0);
    expect(onlyA.events.every((e) => e.tenant === 'dash-a')).toBe(true);

    const { token: reader } = await admin.createOperatorToken({ name: 'dash-reader-a', role: 'tenant-reader', tenantIds: ['dash-a'], ttlSeconds: 600 });
    // ListHosts is fleet-wide: a tenant-scoped token may not read it.
    expect((await get('/v1/hosts', reader)).status).toBe(403);
    const scoped = (await (await get('/v1/events?limit=1000', reader)).json()) as { events: { tenant: string }[] };
    expect(scoped.events.length).toBeGreaterThan(0);
    expect(scoped.events.every((e) => e.tenant === 'dash-a')).toBe(true);
    expect(((await (await get('/v1/events?tenant=dash-b', reader)).json()) as { events: unknown[] }).events).toEqual([]);
    const routes = (await (await get('/v1/routes', reader)).json()) as { routers: unknown[] };
    expect(routes.routers).toEqual([]);
  });

  it('streams events live, replays after an id, and keeps a scoped token to its tenants', async () => {
    expect((await fetch(url('/v1/events/stream'))).status).toBe(401);
    const ctl = new AbortController();
    try {
      const live: StreamEvent[] = [];
      const res = await readStream('/v1/events/stream', h.adminToken, ctl.signal, live);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const { token: reader } = await admin.createOperatorToken({ name: 'dash-reader-s', role: 'tenant-reader', tenantIds: ['dash-s1'], ttlSeconds: 600 });
      const scoped: StreamEvent[] = [];
      await readStream('/v1/events/stream', reader, ctl.signal, scoped);
      await eventually(() => live.some((e) => e.type === 'ready') && scoped.some((e) => e.type === 'ready'), 5000, 'both streams ready');

      await admin.createTenant({ id: 'dash-s1', ownerPassword: 'dash-s1-password' });
      await admin.createTenant({ id: 'dash-s2', ownerPassword: 'dash-s2-password' });
      await eventually(() => live.some((e) => e.data.action === 'tenant.create' && e.data.tenant === 'dash-s2'), 5000, 'live tenant.create of dash-s2');
      expect(live.some((e) => e.data.action === 'tenant.create' && e.data.tenant === 'dash-s1')).toBe(true);
      await eventually(() => scoped.some((e) => e.data.tenant === 'dash-s1'), 5000, 'scoped stream sees its tenant');
      expect(scoped.filter((e) => e.type === 'event').every((e) => e.data.tenant === 'dash-s1')).toBe(true);

      // A reconnect with the last id it saw gets what followed, in order, and nothing before.
      const first = live.find((e) => e.data.action === 'tenant.create' && e.data.tenant === 'dash-s1')!;
      const replay: StreamEvent[] = [];
      await readStream(`/v1/events/stream?after=${first.data.id}`, h.adminToken, ctl.signal, replay);
      await eventually(() => replay.some((e) => e.type === 'ready'), 5000, 'replay ready');
      const replayed = replay.filter((e) => e.type === 'event').map((e) => e.data.id!);
      expect(replayed.length).toBeGreaterThan(0);
      expect(Math.min(...replayed)).toBeGreaterThan(first.data.id!);
      expect(replayed).toEqual([...replayed].sort((a, b) => a - b));
      expect(replay.some((e) => e.data.tenant === 'dash-s2' && e.data.action === 'tenant.create')).toBe(true);
    } finally {
      ctl.abort();
    }
  });
});
