/**
 * Builds and starts a whole coordinator from its config: store, services, gRPC server (operator,
 * agent and route-feed services), HTTP server (REST, OpenAPI, health, metrics), reconciler.
 * main.ts and the integration tests both use it.
 */
import path from 'node:path';
import { Server, type ServerCredentials } from '@grpc/grpc-js';
import { AgentControlService, CoordinatorService, EnrollmentService, RouteFeedService } from '@pgs/proto';
import { addService, Code, type ServiceOptions } from '@pgs/rpc';
import { ConfigError, createRegistry, startOpsServer, type Logger, type OpsServer } from '@pgs/service-kit';
import { AgentHub } from './transport/agent-hub.js';
import { ensureStanzas } from './services/backup-records.js';
import { loadBackupSettings } from './services/backup-repository.js';
import { BackupScheduler } from './services/backup-scheduler.js';
import { InitSqlRunner } from './services/init-sql-runner.js';
import { BackupService } from './services/backup-service.js';
import { agentControlService } from './transport/agent-service.js';
import { splitHostPort, type CoordinatorConfig } from './config.js';
import type { CoordinatorContext } from './services/context.js';
import { EventFeed } from './transport/event-feed.js';
import { FailoverManager } from './services/failover-manager.js';
import { serverCredentials } from './transport/grpc-credentials.js';
import { HealthCache } from './live/health-cache.js';
import { HostService } from './services/host-service.js';
import { HostSlots } from './live/host-slots.js';
import { HostSpares } from './live/host-spares.js';
import { MoveManager } from './services/move-manager.js';
import { UpgradeManager } from './services/upgrade-manager.js';
import { RetiringInstances } from './live/retiring-instances.js';
import { UnchangedReports } from './services/unchanged-reports.js';
import { Liveness } from './live/liveness.js';
import { GoneInstances } from './live/gone-instances.js';
import { BackendFailures } from './live/backend-failures.js';
import { CoordinatorMetrics } from './transport/metrics.js';
import { ObjectService } from './services/object-service.js';
import { operatorService } from './transport/operator-api.js';
import { toRpcError } from './transport/operator-errors.js';
import { Reconciler } from './services/reconciler.js';
import { restHandler } from './transport/rest-api.js';
import { withDashboard } from './transport/ui-assets.js';
import type { FeedSource } from './transport/feed-source.js';
import { FOLLOWER_OPERATOR_METHODS, FOLLOWER_ROUTE_FEED_METHODS } from './transport/follower-methods.js';
import { pickMethods, type PartialImpl, type ServedTerm, type ServingShell } from './leadership/serving-shell.js';
import { RestoreService } from './services/restore-service.js';
import { coordinatorKeyRing } from './services/secret-keys.js';
import { createAccess } from './security/access.js';
import { enrollmentService } from './security/enrollment-service.js';
import { instanceTlsProblem, instanceTlsSetting } from './domain/instance-tls.js';
import { claimFromHello, claimFromWatch } from './security/insecure-claims.js';
import { loadFleetPki, type FleetPki } from './security/fleet-pki.js';
import { TokenService } from './security/token-service.js';
import { SyncQuorums } from './live/sync-quorums.js';
import { IdleWatcher } from './services/idle-watcher.js';
import { RouteFeed } from './transport/route-feed.js';
import { RouterClients } from './live/router-clients.js';
import { SuspendService } from './services/suspend-service.js';
import type { Store } from './store/contract.js';
import { openStore } from './store/open-store.js';
import { TenantService } from './services/tenant-service.js';
import { parseVersionCatalog, VersionCatalog } from './services/versions.js';
import { GRPC_SERVER_OPTIONS } from './transport/grpc-server-options.js';

/** A running coordinator. */
export interface RunningCoordinator {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly ctx: CoordinatorContext;
  readonly reconciler: Reconciler;
  readonly failover: FailoverManager;
  readonly moves: MoveManager;
  readonly upgrades: UpgradeManager;
  readonly backups: BackupScheduler;
  readonly idle: IdleWatcher;
  readonly suspends: SuspendService;
  /** The fleet PKI; undefined with --insecure. */
  readonly pki: FleetPki | undefined;
  /** Where the first start wrote the initial fleet-admin token. */
  readonly adminTokenFile: string;
  stop(): Promise<void>;
}

function bindGrpc(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

/** The operator's own PKI files, when given (all three or none). */
function ownPkiFiles(config: CoordinatorConfig): { caFile: string; certFile: string; keyFile: string } | undefined {
  const given = [config.tlsCa, config.tlsCert, config.tlsKey].filter((f) => f !== '').length;
  if (given === 0) return undefined;
  if (given !== 3) throw new ConfigError('--tls-ca, --tls-cert and --tls-key go together (an own PKI needs all three)');
  return { caFile: config.tlsCa, certFile: config.tlsCert, keyFile: config.tlsKey };
}

/**
 * One term of a coordinator on a store several coordinators share (PostgreSQL): the caller opened
 * the store, bound the addresses (the shell) and loaded the PKI, and keeps all three when the term
 * stops. With `leaderEpoch` the term leads at that epoch (every loop runs, every call is served);
 * without it the term follows: it serves reads and the route and event watches from the store
 * (`feed`: what the leader commits, read back), starts no loop, writes nothing, and every other
 * call is refused towards the leader.
 */
export interface SharedStoreTerm {
  store: Store;
  leaderEpoch?: number;
  shell: ServingShell;
  pki: FleetPki | undefined;
  /** Following: where committed route changes and events come from. */
  feed?: FeedSource;
}

/** Opens the SQLite store at the data dir. */
function openOwnStore(config: CoordinatorConfig, log: Logger, clock: () => number): Store {
  const opened = openStore({ dataDir: config.dataDir, allowInit: config.allowInit, routeHistory: config.routeHistory, now: clock() });
  const store = opened.store;
  log.info(
    { location: store.location, created: opened.created, schemaVersion: store.schemaVersion, migrationsApplied: opened.applied },
    opened.created ? 'store initialised' : 'store opened',
  );
  return store;
}

/** Opens the store (or takes the leader term's) and starts every server and loop. */
export async function startCoordinator(
  config: CoordinatorConfig,
  log: Logger,
  clock: () => number = Date.now,
  env: Readonly<Record<string, string | undefined>> = process.env,
  term?: SharedStoreTerm,
): Promise<RunningCoordinator> {
  const following = term !== undefined && term.leaderEpoch === undefined;
  const pkiFiles = config.insecure ? undefined : ownPkiFiles(config);
  const store = term?.store ?? openOwnStore(config, log, clock);
  const closeStore = (): Promise<void> => (term ? Promise.resolve() : store.close());
  const registry = createRegistry('coordinator');
  const versions = new VersionCatalog(parseVersionCatalog(config.versions));
  // Filled below; the metrics read stream counts at scrape time.
  const live: { hub?: AgentHub; routes?: RouteFeed; events?: EventFeed } = {};
  const metrics = new CoordinatorMetrics(registry, store, () => ({
    agents: live.hub?.size ?? 0,
    routers: live.routes?.size ?? 0,
    eventWatchers: live.events?.size ?? 0,
  }));
  const keys = coordinatorKeyRing({ keyFile: config.secretKeyFile, dataDir: config.dataDir, env }, log);
  log.info({ keyId: keys.activeKeyId }, 'secrets at rest sealed with AES-256-GCM');
  const grpcHost = splitHostPort(config.grpcListen, '--grpc-listen').host;
  // --insecure: no certificates at all (and no join tokens); otherwise the fleet CA or the operator's own PKI.
  const pki = term
    ? term.pki
    : config.insecure
      ? undefined
      : await loadFleetPki({ store, keys, dataDir: config.dataDir, names: [grpcHost, ...config.tlsNames], files: pkiFiles, clock, log });
  // A PKI the caller loaded outlives this term.
  const stopPki = (): void => (term ? undefined : pki?.stop());
  const instanceTls = instanceTlsSetting(config.instanceTls, pki ? (pki.ca ? 'fleet-ca' : 'own-pki') : 'insecure');
  metrics.instanceTls.set(instanceTls.on ? 1 : 0);
  if (!instanceTls.on) log.warn({ reason: instanceTls.offReason }, instanceTlsProblem(instanceTls) ?? '');
  const access = createAccess({ store, insecure: config.insecure, clock, log });
  const tokenService = new TokenService({ store, keys, ca: pki?.ca, clock, log });
  const adminTokenFile = config.adminTokenFile || path.join(config.dataDir, 'admin.token');
  if (!following && (await tokenService.bootstrapAdmin(adminTokenFile)))
    log.info({ file: adminTokenFile }, 'initial fleet-admin token written (mode 0600); use it with pgsctl --token-file or PGS_TOKEN');
  const quorums = new SyncQuorums();
  const loadBackup = () => loadBackupSettings({ config, env, store, keys, now: clock(), log: log.child({ component: 'backups' }) });
  // A follower cannot store what a first start seals (S3 credentials given in the environment): it
  // serves without the repository settings, which only the leader's backups use.
  const backup = following
    ? await loadBackup().catch((err: unknown) => {
        log.debug({ err }, 'backup settings not loaded while following');
        return undefined;
      })
    : await loadBackup();
  const retiring = new RetiringInstances();
  const liveness = new Liveness({ ttlMs: config.hostTtl, graceMs: config.hostDownGrace, confirmMs: config.hostLostConfirm, startedAt: clock() });
  const gone = new GoneInstances(liveness);
  const unchangedReports = new UnchangedReports();
  store.subscribe((commit) => unchangedReports.onCommit(commit));
  const hub = new AgentHub(
    store,
    versions,
    log.child({ component: 'agent-hub' }),
    { desiredSent: (kind) => metrics.desiredSets.inc({ kind }) },
    { keys, quorums, backup, retiring, gone },
  );
  hub.leaderEpoch = term?.leaderEpoch ?? 0;
  const ctx: CoordinatorContext = {
    store,
    clock,
    log,
    health: new HealthCache(),
    backendFailures: new BackendFailures(),
    versions,
    hub,
    liveness,
    gone,
    spares: new HostSpares(),
    slots: new HostSlots(),
    unchangedReports,
    retry: { baseMs: config.retryBase, maxMs: config.retryMax },
    placementPolicy: {
      strategy: config.placementStrategy as 'binpack' | 'spread',
      cpuOvercommit: config.cpuOvercommit,
      zoneLabel: config.zoneLabel,
      maxCreatingPerHost: config.maxCreatingPerHost,
    },
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
      switchGraceMs: config.switchGrace,
      replicaReplaceDelayMs: config.replicaReplaceDelay,
    },
    backup,
    instanceTls,
    retiring,
    moveCopyTimeoutMs: config.moveCopyTimeout,
    moveCheckpointTimeoutMs: config.moveCheckpointTimeout,
    leaderEpoch: term?.leaderEpoch ?? 0,
  };
  if (backup && !following) await ensureStanzas(store, clock());
  const failover = new FailoverManager(ctx);
  const moves = new MoveManager(ctx, failover, config.drainParallel);
  const upgrades = new UpgradeManager(ctx, failover, moves);
  const backupScheduler = new BackupScheduler(ctx);
  metrics.backupSources.health = () => (backup ? backupScheduler.health : undefined);
  metrics.backupSources.now = clock;
  const backups = new BackupService(ctx, backupScheduler);
  const initSql = new InitSqlRunner(ctx);
  const restores = new RestoreService(ctx);
  const routes = new RouteFeed(
    store,
    log,
    (kind) => metrics.routeBatches.inc({ kind }),
    instanceTls.on,
    config.routeSnapshotPart,
    term?.feed,
    config.routeQueueKib * 1024,
  );
  const suspends = new SuspendService(ctx, { perSecond: config.wakeRate, burst: config.wakeBurst }, moves);
  const routerClients = new RouterClients(config.routerReportMaxAge);
  const idle = new IdleWatcher({
    ctx,
    clients: routerClients,
    suspends,
    connectedRouters: () => routes.peers().map((p) => p.routerId),
    intervalMs: config.idleCheckInterval,
    healthMaxAgeMs: Math.max(30_000, config.routerReportMaxAge),
  });
  const events = new EventFeed(store, term?.feed);
  Object.assign(live, { hub, routes, events });
  const tenants = new TenantService(ctx);
  const objects = new ObjectService(ctx);
  const hosts = new HostService(ctx, moves);

  const rpcLog = log.child({ component: 'grpc' });
  const options: ServiceOptions = {
    mapError: (err) => toRpcError(err),
    onCallEnd: ({ method, code, durationMs, error }) => {
      metrics.rpcDuration.observe({ method, code: Code[code] ?? String(code) }, durationMs / 1000);
      if (code === Code.INTERNAL || code === Code.UNKNOWN) rpcLog.error({ method, err: error, durationMs }, 'call failed');
      else if (code !== Code.OK && code !== Code.CANCELLED)
        rpcLog.info({ method, code: Code[code], durationMs, message: error instanceof Error ? error.message : undefined }, 'call refused');
      else rpcLog.debug({ method, durationMs }, 'call done');
    },
  };
  // Every service behind the guard: no RPC runs without an authenticated, authorized caller.
  const operator = access.guard(
    CoordinatorService,
    operatorService({
      ctx,
      tenants,
      objects,
      hosts,
      routes,
      events,
      failover,
      moves,
      upgrades,
      tokens: tokenService,
      backups,
      restores,
      backupScheduler,
      initSql,
      suspends,
    }),
    'operator',
  );
  const agentsGuarded = access.guard(AgentControlService, agentControlService(ctx, undefined, backupScheduler, initSql), 'component');
  const agents = config.insecure ? claimFromHello(agentsGuarded) : agentsGuarded;
  const feedGuarded = access.guard(
    RouteFeedService,
    routes.service({ clients: routerClients, suspends, clock, backendFailures: ctx.backendFailures }),
    'component',
  );
  const feed = config.insecure ? claimFromWatch(feedGuarded) : feedGuarded;
  const enrollment = access.guard(EnrollmentService, enrollmentService({ store, ca: pki?.ca, lifetimeMs: config.certLifetime, clock, log }), 'component');

  const reconciler = new Reconciler(ctx, config.reconcileInterval, failover, undefined, backupScheduler, moves);
  const health = async (): Promise<{ ok: boolean; [detail: string]: unknown }> => ({
    ok: true,
    store: store.location,
    schemaVersion: store.schemaVersion,
    routeRevision: await store.read.routes.revision(),
    agents: hub.size,
    routers: routes.size,
    ...(term === undefined ? {} : following ? { role: 'follower', leader: term.shell.leader() ?? '' } : { role: 'leader', leaderEpoch: term.leaderEpoch }),
  });
  const extraRoutes = withDashboard(
    restHandler({
      ctx,
      tenants,
      objects,
      hosts,
      moves,
      suspends,
      upgrades,
      routes,
      metrics,
      log: log.child({ component: 'rest' }),
      backups,
      restores,
      backupHealth: backup ? backupScheduler.health : undefined,
      events,
    }),
  );
  const endStreams = (): void => {
    // Server streams (agents, routers, event watchers) never end by themselves: end them, so the
    // server drains at once; their clients see a clean end and reconnect to whichever coordinator
    // serves next.
    hub.closeAll('coordinator stopping');
    routes.close();
    events.close();
  };
  const stopLoops = (): void => {
    reconciler.stop();
    upgrades.stopLoop();
    failover.stop();
    moves.stop();
    initSql.stop();
    idle.stop();
  };
  const startLoops = async (): Promise<void> => {
    if (following) return;
    await reconciler.start();
    upgrades.startLoop();
    initSql.start();
    idle.start();
  };
  const running = (grpcAddress: string, httpAddress: string, close: () => Promise<void>): RunningCoordinator => ({
    grpcAddress,
    httpAddress,
    ctx,
    reconciler,
    failover,
    moves,
    upgrades,
    backups: backupScheduler,
    idle,
    suspends,
    pki,
    adminTokenFile,
    stop: async () => {
      stopLoops();
      stopPki();
      endStreams();
      // Nothing of an ended term follows the store's commits any more (terms come and go on a shared store).
      reconciler.close();
      hub.stop();
      suspends.close();
      await close();
    },
  });

  if (term) {
    // The shell's addresses stay bound; this term's handlers replace the previous term's.
    const { shell } = term;
    const services = new Map<string, PartialImpl>(
      following
        ? [
            [CoordinatorService.typeName, pickMethods(operator, FOLLOWER_OPERATOR_METHODS)],
            [RouteFeedService.typeName, pickMethods(feed, FOLLOWER_ROUTE_FEED_METHODS)],
          ]
        : [
            [
              CoordinatorService.typeName,
              pickMethods(
                operator,
                CoordinatorService.methods.map((m) => m.localName),
              ),
            ],
            [
              AgentControlService.typeName,
              pickMethods(
                agents,
                AgentControlService.methods.map((m) => m.localName),
              ),
            ],
            [
              RouteFeedService.typeName,
              pickMethods(
                feed,
                RouteFeedService.methods.map((m) => m.localName),
              ),
            ],
            [
              EnrollmentService.typeName,
              pickMethods(
                enrollment,
                EnrollmentService.methods.map((m) => m.localName),
              ),
            ],
          ],
    );
    const served: ServedTerm = { services, options, registry, health, extraRoutes };
    try {
      await startLoops();
    } catch (err) {
      stopLoops();
      endStreams();
      throw err;
    }
    shell.serve(served);
    log.info(
      { grpc: shell.grpcAddress, role: following ? 'follower' : 'leader', epoch: term.leaderEpoch },
      following ? 'following: serving reads and watches' : 'leading: serving every call',
    );
    return running(shell.grpcAddress, shell.httpAddress, async () => {
      if (shell.serving(served)) shell.serve(undefined);
    });
  }

  const server = new Server(GRPC_SERVER_OPTIONS);
  addService(server, CoordinatorService, operator, options);
  addService(server, AgentControlService, agents, options);
  addService(server, RouteFeedService, feed, options);
  addService(server, EnrollmentService, enrollment, options);
  let ops: OpsServer | undefined;
  try {
    const grpcPort = await bindGrpc(server, config.grpcListen, serverCredentials(pki, log));
    const { host: httpHost, port: httpPort } = splitHostPort(config.httpListen, '--http-listen');
    ops = await startOpsServer({ host: httpHost, port: httpPort, registry, health, extraRoutes });
    await startLoops();
    const grpcAddress = `${grpcHost}:${grpcPort}`;
    log.info({ grpc: grpcAddress, http: ops.address, tls: pki ? (pki.ca ? 'fleet-ca' : 'own-pki') : 'insecure' }, 'coordinator listening');
    const opened = ops;
    return running(grpcAddress, opened.address, async () => {
      await new Promise<void>((resolve) => {
        // The forced cut stays as a bound for a call stuck in a send.
        const force = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await opened.close();
      await closeStore();
    });
  } catch (err) {
    stopLoops();
    stopPki();
    server.forceShutdown();
    await ops?.close();
    await closeStore();
    throw err;
  }
}
