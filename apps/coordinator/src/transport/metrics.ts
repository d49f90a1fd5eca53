/**
 * Prometheus metrics of the coordinator: tenants by status and hosts by state (gauges read from
 * the store at scrape time), stream counts, RPC latencies, scheduler decisions, route revision.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TenantBackupHealth } from '../services/backup-scheduler.js';
import type { Store } from '../store/contract.js';

/** The coordinator's metric handles. */
export class CoordinatorMetrics {
  readonly rpcDuration: Histogram<'method' | 'code'>;
  readonly httpDuration: Histogram<'route' | 'status'>;
  readonly schedulerDecisions: Counter<'outcome'>;
  readonly desiredSets: Counter<'kind'>;
  readonly routeBatches: Counter<'kind'>;
  readonly hostTransitions: Counter<'to'>;
  readonly backlogWalks: Counter<'outcome'>;
  readonly suspends: Counter<'trigger'>;
  readonly wakes: Counter<'outcome'>;
  readonly wakeSeconds: Histogram;
  /** 1 with TLS between routers and instances, 0 with it off (alert on 0). */
  readonly instanceTls: Gauge;
  /** Where the per-tenant backup gauges read from (set once the backup scheduler exists). */
  readonly backupSources: { health: () => ReadonlyMap<string, TenantBackupHealth> | undefined; now: () => number } = { health: () => undefined, now: Date.now };

  constructor(registry: Registry, store: Store, streams: () => { agents: number; routers: number; eventWatchers: number }) {
    this.instanceTls = new Gauge({
      name: 'pgs_coordinator_instance_tls',
      help: 'TLS between routers and instances and between standbys and primaries: 1 on, 0 off (tenant data crosses the network in plaintext)',
      registers: [registry],
    });
    this.rpcDuration = new Histogram({
      name: 'pgs_coordinator_rpc_duration_seconds',
      help: 'gRPC call duration by method and status code',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.httpDuration = new Histogram({
      name: 'pgs_coordinator_http_duration_seconds',
      help: 'REST request duration by route and HTTP status',
      labelNames: ['route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.schedulerDecisions = new Counter({
      name: 'pgs_coordinator_scheduler_decisions_total',
      help: 'Scheduler decisions: placed, unplaced, replaced (never-realized tenants moved off a down host), retried',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.desiredSets = new Counter({
      name: 'pgs_coordinator_desired_sets_sent_total',
      help: 'Desired sets sent to agents',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.routeBatches = new Counter({
      name: 'pgs_coordinator_route_batches_sent_total',
      help: 'Route batches sent to routers',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.hostTransitions = new Counter({
      name: 'pgs_coordinator_host_transitions_total',
      help: 'Host liveness transitions by new state',
      labelNames: ['to'],
      registers: [registry],
    });
    this.backlogWalks = new Counter({
      name: 'pgs_coordinator_backlog_walks_total',
      help: 'Whole walks of the waiting tenants by outcome: placed (some), parked (none placed: no more walks until room may be freed), skipped (a placement pass while parked: only new tenants, by id)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.suspends = new Counter({
      name: 'pgs_coordinator_suspends_total',
      help: 'Tenants suspended, by trigger (idle, operator)',
      labelNames: ['trigger'],
      registers: [registry],
    });
    this.wakes = new Counter({
      name: 'pgs_coordinator_wakes_total',
      help: 'Wake requests by outcome: started, in_progress (already waking), throttled (fleet wake rate), refused (e.g. no room on the host)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.wakeSeconds = new Histogram({
      name: 'pgs_coordinator_wake_seconds',
      help: "From a wake starting to the tenant's route being routable again",
      buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers: [registry],
    });
    new Gauge({
      name: 'pgs_coordinator_tenants',
      help: 'Tenants by status',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [status, n] of Object.entries(await store.read.tenants.countByStatus())) this.set({ status }, n);
      },
    });
    const statements = store.statements;
    if (statements)
      new Counter({
        name: 'pgs_coordinator_store_statements_total',
        help: 'Statements sent to the store (PostgreSQL), by connection (writer, read): each is a round trip',
        labelNames: ['connection'],
        registers: [registry],
        collect() {
          const n = statements();
          this.reset();
          this.inc({ connection: 'writer' }, n.writer);
          this.inc({ connection: 'read' }, n.read);
        },
      });
    const durableCommits = store.durableCommits;
    if (durableCommits)
      new Counter({
        name: 'pgs_coordinator_store_durable_commits_total',
        help: 'Store commits that wrote something (SQLite: each an fsync of its log, on the event loop)',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(durableCommits());
        },
      });
    new Gauge({
      name: 'pgs_coordinator_hosts',
      help: 'Hosts by state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const h of await store.read.hosts.list()) this.inc({ state: h.state });
      },
    });
    new Gauge({
      name: 'pgs_coordinator_streams',
      help: 'Open streams by kind (agent, router, event watcher)',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        const s = streams();
        this.set({ kind: 'agent' }, s.agents);
        this.set({ kind: 'router' }, s.routers);
        this.set({ kind: 'event_watcher' }, s.eventWatchers);
      },
    });
    new Gauge({
      name: 'pgs_coordinator_backups',
      help: 'Backups by status over the fleet',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [status, n] of Object.entries(await store.read.backups.countByStatus())) this.set({ status }, n);
      },
    });
    const perTenant = (name: string, help: string, value: (h: TenantBackupHealth, now: number) => number): void => {
      const sources = this.backupSources;
      new Gauge({
        name,
        help,
        labelNames: ['tenant'],
        registers: [registry],
        collect() {
          this.reset();
          const health = sources.health();
          if (!health) return;
          const now = sources.now();
          for (const [tenant, h] of health) this.set({ tenant }, value(h, now));
        },
      });
    };
    perTenant('pgs_coordinator_backup_last_good_age_seconds', "Age of the tenant's last good backup (-1 = none yet)", (h, now) =>
      h.lastGoodAt > 0 ? Math.round((now - h.lastGoodAt) / 1000) : -1,
    );
    perTenant('pgs_coordinator_backup_archive_lag_seconds', 'How old the oldest commit not archived yet is', (h) => h.archiveLagSeconds);
    perTenant('pgs_coordinator_backup_archive_pending_bytes', 'WAL written but not archived yet', (h) => h.archivePendingBytes);
    perTenant('pgs_coordinator_backup_archive_failures', 'WAL archive failures the primary counted (pg_stat_archiver.failed_count)', (h) => h.archiveFailures);
    perTenant('pgs_coordinator_backup_repository_bytes', "The tenant's stanza size in the repository after its last good backup", (h) => h.repoSizeBytes);
    new Gauge({
      name: 'pgs_coordinator_route_revision',
      help: 'Current global route-table revision',
      registers: [registry],
      async collect() {
        this.set(await store.read.routes.revision());
      },
    });
  }
}
