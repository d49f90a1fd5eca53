// A fake RouteFeedService on a real gRPC server, for tests and the benchmark: the seam we own.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { RouteFeedService, WakeOutcome } from '@pgs/proto';
import { addService } from '@pgs/rpc';
import type { RouterPeerEntry, RouteUpsert } from '../route.js';
import { routeToProto } from '../route-feed-mapper.js';

/** A watcher as the fake saw it. */
export interface FakeWatch {
  sinceRevision: number;
  routerId: string;
  cancelAddress: string;
}

/** A client report as the fake got it. */
export interface FakeClientReport {
  routerId: string;
  clients: Map<string, number>;
  complete: boolean;
}

/** A wake request as the fake got it. */
export interface FakeWake {
  tenantId: string;
  routerId: string;
  waitingClients: number;
}

/** What the fake answers a wake: the outcome, and optionally a message and retry delay. */
export type FakeWakeAnswer = { outcome: 'STARTED' | 'IN_PROGRESS' | 'THROTTLED' | 'REFUSED'; message?: string; retryAfterMs?: number };

/** A route feed served from an in-memory table; `set`/`remove` push deltas to every watcher. */
export interface FakeRouteFeed {
  readonly address: string;
  readonly watches: FakeWatch[];
  readonly reports: FakeClientReport[];
  /** Refused or timed-out connects the router reported (kind: BackendFailureKind). */
  readonly backendFailures: Array<{ tenantId: string; address: string; port: number; kind: number }>;
  readonly wakes: FakeWake[];
  /** How wakes are answered (STARTED by default); the test changes routes itself. */
  onWake: (wake: FakeWake) => FakeWakeAnswer;
  readonly revision: number;
  /** Upserts routes (each gets the next revision) and pushes them to the watchers. */
  set(...routes: Array<Omit<RouteUpsert, 'revision'>>): void;
  remove(...tenantIds: string[]): void;
  setPeers(peers: RouterPeerEntry[]): void;
  /** Ends every open watch with an error (as a coordinator crash would). */
  dropWatchers(): void;
  stop(): Promise<void>;
}

interface Watcher {
  push(batch: { revision: number; snapshot: boolean; routes: RouteUpsert[]; deleted: string[]; peers?: RouterPeerEntry[] }): void;
  fail(): void;
}

/** Starts a fake feed on 127.0.0.1 (port 0 = any free port, or a fixed one to restart on). */
export async function startFakeRouteFeed(
  options: { port?: number; routes?: Array<Omit<RouteUpsert, 'revision'>>; peers?: RouterPeerEntry[]; instanceTls?: boolean; snapshotPart?: number } = {},
): Promise<FakeRouteFeed> {
  const instanceTls = options.instanceTls ?? false;
  let revision = 0;
  const table = new Map<string, RouteUpsert>();
  const history: Array<{ revision: number; route?: RouteUpsert; deleted?: string }> = [];
  let peers: RouterPeerEntry[] = options.peers ?? [];
  const watchers = new Set<Watcher>();
  const watches: FakeWatch[] = [];
  const reports: FakeClientReport[] = [];
  const backendFailures: Array<{ tenantId: string; address: string; port: number; kind: number }> = [];
  const wakes: FakeWake[] = [];
  const control = { onWake: (_w: FakeWake): FakeWakeAnswer => ({ outcome: 'STARTED' }) };
  for (const r of options.routes ?? []) {
    const entry = { ...r, revision: ++revision };
    table.set(r.tenantId, entry);
    history.push({ revision, route: entry });
  }

  const server = new Server();
  addService(server, RouteFeedService, {
    async reportClients(req) {
      reports.push({ routerId: req.routerId, clients: new Map(req.tenants.map((t) => [t.tenantId, t.clients])), complete: req.complete });
      return {};
    },
    async reportBackendFailures(req) {
      backendFailures.push(...req.failures.map((f) => ({ tenantId: f.tenantId, address: f.address, port: f.port, kind: f.kind })));
      return {};
    },
    async wakeTenant(req) {
      const wake = { tenantId: req.tenantId, routerId: req.routerId, waitingClients: req.waitingClients };
      wakes.push(wake);
      const a = control.onWake(wake);
      return { outcome: WakeOutcome[a.outcome], message: a.message ?? '', retryAfterMs: a.retryAfterMs ?? 0 };
    },
    async watchRoutes(req, stream, ctx) {
      const since = Number(req.sinceRevision);
      watches.push({ sinceRevision: since, routerId: req.routerId, cancelAddress: req.cancelAddress });
      const queue: Array<Parameters<Watcher['push']>[0] | 'fail'> = [];
      let wake: (() => void) | undefined;
      const watcher: Watcher = {
        push: (b) => {
          queue.push(b);
          wake?.();
        },
        fail: () => {
          queue.push('fail');
          wake?.();
        },
      };
      watchers.add(watcher);
      try {
        if (since === 0 || since > revision) {
          // In parts of `snapshotPart` routes to a router that asks for parts, as the coordinator sends them.
          const all = [...table.values()].map(routeToProto);
          const part = req.snapshotInParts && options.snapshotPart ? options.snapshotPart : Math.max(1, all.length);
          for (let from = 0; from === 0 || from < all.length; from += part) {
            await stream.send({
              snapshot: true,
              snapshotContinues: from + part < all.length,
              revision: BigInt(revision),
              upserts: all.slice(from, from + part),
              routers: peers,
              routersChanged: true,
              instanceTls,
            });
          }
        } else {
          const newer = history.filter((h) => h.revision > since);
          await stream.send({
            snapshot: false,
            revision: BigInt(revision),
            upserts: newer.flatMap((h) => (h.route && table.get(h.route.tenantId)?.revision === h.revision ? [routeToProto(h.route)] : [])),
            deletedTenantIds: newer.flatMap((h) => (h.deleted && !table.has(h.deleted) ? [h.deleted] : [])),
            routers: peers,
            routersChanged: true,
            instanceTls,
          });
        }
        while (!ctx.signal.aborted) {
          const next = queue.shift();
          if (next === undefined) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              ctx.signal.addEventListener('abort', () => resolve(), { once: true });
            });
            wake = undefined;
            continue;
          }
          if (next === 'fail') throw new Error('feed dropped by the test');
          await stream.send({
            snapshot: next.snapshot,
            revision: BigInt(next.revision),
            upserts: next.routes.map(routeToProto),
            deletedTenantIds: next.deleted,
            routers: next.peers ?? [],
            routersChanged: next.peers !== undefined,
            instanceTls,
          });
        }
      } finally {
        watchers.delete(watcher);
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    watches,
    reports,
    backendFailures,
    wakes,
    get onWake() {
      return control.onWake;
    },
    set onWake(fn) {
      control.onWake = fn;
    },
    get revision() {
      return revision;
    },
    set(...routes) {
      const entries = routes.map((r) => ({ ...r, revision: ++revision }));
      for (const e of entries) {
        table.set(e.tenantId, e);
        history.push({ revision: e.revision, route: e });
      }
      for (const w of watchers) w.push({ revision, snapshot: false, routes: entries, deleted: [] });
    },
    remove(...ids) {
      for (const id of ids) {
        table.delete(id);
        history.push({ revision: ++revision, deleted: id });
      }
      for (const w of watchers) w.push({ revision, snapshot: false, routes: [], deleted: ids });
    },
    setPeers(next) {
      peers = next;
      for (const w of watchers) w.push({ revision, snapshot: false, routes: [], deleted: [], peers: next });
    },
    dropWatchers() {
      for (const w of watchers) w.fail();
    },
    stop: async () => {
      // Open watches never end on their own, so a graceful shutdown would wait forever.
      server.forceShutdown();
    },
  };
}
