import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';

/** What /healthz reports: ok decides 200 vs 503; details are shown as JSON. */
export interface HealthReport {
  ok: boolean;
  [detail: string]: unknown;
}

/** A metrics registry with the process's default metrics and an `app` label. */
export function createRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** The operations HTTP endpoint of an app: GET /healthz, /readyz and /metrics (Prometheus text). */
export interface OpsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the ops endpoint; `extraRoutes` may answer other GET paths (e.g. a JSON status page). */
export async function startOpsServer(options: {
  host: string;
  port: number;
  /** The registry /metrics reads, or a function naming it at each scrape (a process that rebuilds its parts). */
  registry: Registry | (() => Registry);
  health: () => HealthReport | Promise<HealthReport>;
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
}): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    void (async () => {
      try {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) {
          const report = await options.health();
          res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify(report));
        } else if (req.method === 'GET' && path === '/metrics') {
          const registry = typeof options.registry === 'function' ? options.registry() : options.registry;
          const text = await registry.metrics();
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        } else if (!(await options.extraRoutes?.(req, res))) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'not found', paths: ['/healthz', '/readyz', '/metrics'] }));
        }
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error', message: err instanceof Error ? err.message : String(err) }));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    address: `${addr.address}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
