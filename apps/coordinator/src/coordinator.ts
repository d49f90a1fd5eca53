/**
 * Builds and starts a whole coordinator from its config: store, services, gRPC server (operator,
 * agent and route-feed services), HTTP server (REST, OpenAPI, health, metrics), reconciler.
 * main.ts and the integration tests both use it.
 */
import { Server } from '@grpc/grpc-js';
import { AgentControlService, CoordinatorService, RouteFeedService } from '@pgs/proto';
import { addService, Code, type ServiceOptions } from '@pgs/rpc';
import { createRegistry, startOpsServer, type Logger, type OpsServer } from '@pgs/service-kit';
import { AgentHub } from './agent-hub.js';
import { agentControlService } from './agent-service.js';
import { splitHostPort, type CoordinatorConfig } from './config.js';
import type { CoordinatorContext } from './context.js';
import { EventFeed } from './event-feed.js';
import { FailoverManager } from './failover-manager.js';
import { serverCredentials } from './grpc-credentials.js';
import { HealthCache } from './health-cache.js';
import { HostService } from './host-service.js';
import { Liveness } from './liveness.js';
import { CoordinatorMetrics } from './metrics.js';
import { ObjectService } from './object-service.js';
import { operatorService } from './operator-api.js';
import { toRpcError } from './operator-errors.js';
import { Reconciler } from './reconciler.js';
import { restHandler } from './rest-api.js';
import { coordinatorKeyRing } from './secret-keys.js';
import { SyncQuorums } from './sync-quorums.js';
import { RouteFeed } from './route-feed.js';
import { openStore } from './store/open-store.js';
import { TenantService } from './tenant-service.js';
import { parseVersionCatalog, VersionCatalog } from './versions.js';

/** A running coordinator. */
export interface RunningCoordinator {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly ctx: CoordinatorContext;
  readonly reconciler: Reconciler;
  readonly failover: FailoverManager;
  stop(): Promise<void>;
}

function bindGrpc(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, serverCredentials(), (err, port) => (err ? reject(err) : resolve(port))));
}

/** Opens the store and starts every server and loop. */
export async function startCoordinator(
  config: CoordinatorConfig,
  log: Logger,
  clock: () => number = Date.now,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<RunningCoordinator> {
  const opened = openStore({ dataDir: config.dataDir, allowInit: config.allowInit, routeHistory: config.routeHistory, now: clock() });
  const store = opened.store;
  log.info({ location: store.location, created: opened.created, schemaVersion: store.schemaVersion, migrationsApplied: opened.applied }, opened.created ? 'store initialised' : 'store opened');
  const registry = createRegistry('coordinator');
  const versions = new VersionCatalog(parseVersionCatalog(config.versions));
  // Filled below; the metrics read stream counts at scrape time.
  const live: { hub?: AgentHub; routes?: RouteFeed; events?: EventFeed } = {};
  const metrics = new CoordinatorMetrics(registry, store, () => ({ agents: live.hub?.size ?? 0, routers: live.routes?.size ?? 0, eventWatchers: live.events?.size ?? 0 }));
  const keys = coordinatorKeyRing({ keyFile: config.secretKeyFile, dataDir: config.dataDir, env }, log);
  const quorums = new SyncQuorums();
  const hub = new AgentHub(store, versions, log.child({ component: 'agent-hub' }), { desiredSent: (kind) => metrics.desiredSets.inc({ kind }) }, { keys, quorums });
  const ctx: CoordinatorContext = {
    store,
    clock,
    log,
    health: new HealthCache(),
    versions,
    hub,
    liveness: new Liveness({ ttlMs: config.hostTtl, graceMs: config.hostDownGrace, startedAt: clock() }),
    retry: { baseMs: config.retryBase, maxMs: config.retryMax },
    placementPolicy: { strategy: config.placementStrategy as 'binpack' | 'spread', cpuOvercommit: config.cpuOvercommit, zoneLabel: config.zoneLabel },
    heartbeatIntervalMs: config.heartbeatInterval,
    leaseMs: config.agentLease,
    metrics,
    keys,
    quorums,
    failover: {
      unhealthyAfterMs: config.failoverUnhealthyAfter,
      promoteTimeoutMs: config.promoteTimeout,
      switchoverTimeoutMs: config.switchoverTimeout,
      switchoverMaxLagBytes: config.switchoverMaxLag,
      replicaReplaceDelayMs: config.replicaReplaceDelay,
    },
  };
  const failover = new FailoverManager(ctx);
  const routes = new RouteFeed(store, log, (kind) => metrics.routeBatches.inc({ kind }));
  const events = new EventFeed(store);
  Object.assign(live, { hub, routes, events });
  const tenants = new TenantService(ctx);
  const objects = new ObjectService(ctx);
  const hosts = new HostService(ctx);

  const rpcLog = log.child({ component: 'grpc' });
  const options: ServiceOptions = {
    mapError: (err) => toRpcError(err),
    onCallEnd: ({ method, code, durationMs, error }) => {
      metrics.rpcDuration.observe({ method, code: Code[code] ?? String(code) }, durationMs / 1000);
      if (code === Code.INTERNAL || code === Code.UNKNOWN) rpcLog.error({ method, err: error, durationMs }, 'call failed');
      else if (code !== Code.OK && code !== Code.CANCELLED) rpcLog.info({ method, code: Code[code], durationMs, message: error instanceof Error ? error.message : undefined }, 'call refused');
      else rpcLog.debug({ method, durationMs }, 'call done');
    },
  };
  const server = new Server({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1 });
  addService(server, CoordinatorService, operatorService({ ctx, tenants, objects, hosts, routes, events, failover }), options);
  addService(server, AgentControlService, agentControlService(ctx), options);
  addService(server, RouteFeedService, routes.service(), options);

  const reconciler = new Reconciler(ctx, config.reconcileInterval, failover);
  let ops: OpsServer | undefined;
  try {
    const grpcPort = await bindGrpc(server, config.grpcListen);
    const { host: httpHost, port: httpPort } = splitHostPort(config.httpListen, '--http-listen');
    ops = await startOpsServer({
      host: httpHost,
      port: httpPort,
      registry,
      health: () => ({ ok: true, store: store.location, schemaVersion: store.schemaVersion, routeRevision: store.routeRevision(), agents: hub.size, routers: routes.size }),
      extraRoutes: restHandler({ ctx, tenants, objects, hosts, routes, metrics, log: log.child({ component: 'rest' }) }),
    });
    reconciler.start();
    const { host: grpcHost } = splitHostPort(config.grpcListen, '--grpc-listen');
    const grpcAddress = `${grpcHost}:${grpcPort}`;
    log.info({ grpc: grpcAddress, http: ops.address }, 'coordinator listening');
    const running: RunningCoordinator = {
      grpcAddress,
      httpAddress: ops.address,
      ctx,
      reconciler,
      failover,
      stop: async () => {
        reconciler.stop();
        await new Promise<void>((resolve) => {
          // Streams (agents, routers, watchers) never end by themselves: give calls a moment, then cut.
          const force = setTimeout(() => server.forceShutdown(), 2000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await ops?.close();
        store.close();
      },
    };
    return running;
  } catch (err) {
    reconciler.stop();
    server.forceShutdown();
    await ops?.close();
    store.close();
    throw err;
  }
}
