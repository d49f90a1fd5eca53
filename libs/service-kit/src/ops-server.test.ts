import { Counter } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry, startOpsServer, type OpsServer } from './ops-server.js';

describe('ops server', () => {
  let ops: OpsServer | undefined;
  afterAll(async () => ops?.close());
  it('serves /healthz, /metrics and 404', async () => {
    const registry = createRegistry('test');
    const c = new Counter({ name: 'pgs_test_total', help: 'test', registers: [registry] });
    c.inc(3);
    let healthy = true;
    ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry, health: () => ({ ok: healthy, cacheAgeMs: 5 }) });
    const base = `http://127.0.0.1:${ops.port}`;
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ ok: true, cacheAgeMs: 5 });
    healthy = false;
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
    const m = await (await fetch(`${base}/metrics`)).text();
    expect(m).toContain('pgs_test_total{app="test"} 3');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
