/**
 * The coordinator's options: one table, read once from flags and PGS_* variables; `--help` is
 * generated from it (see README for the defaults and why).
 */
import { ConfigError, loadConfig, type ConfigOf, type ConfigResult } from '@pgs/service-kit';

/** Every option of the coordinator. */
export const CONFIG_SPEC = {
  grpcListen: {
    type: 'string',
    flag: '--grpc-listen',
    env: 'PGS_GRPC_LISTEN',
    description: 'gRPC address for CoordinatorService, AgentControlService and RouteFeedService',
    default: '127.0.0.1:7400',
  },
  httpListen: {
    type: 'string',
    flag: '--http-listen',
    env: 'PGS_HTTP_LISTEN',
    description: 'HTTP address for the REST API (/v1/...), /openapi.json, /healthz, /readyz and /metrics',
    default: '127.0.0.1:7480',
  },
  dataDir: { type: 'string', flag: '--data-dir', env: 'PGS_DATA_DIR', description: 'directory of the store (coordinator.db)', default: '.pgs/coordinator' },
  store: {
    type: 'string',
    flag: '--store',
    env: 'PGS_STORE',
    description:
      'the store: empty or sqlite:<dir> = SQLite in that dir (default: --data-dir), or postgres://user:password@host:port[,host:port]/db = PostgreSQL, shared by several coordinators (one leads by a lease; the others redirect writes to it)',
    default: '',
  },
  advertiseAddress: {
    type: 'string',
    flag: '--advertise-address',
    env: 'PGS_ADVERTISE_ADDRESS',
    description:
      'with a PostgreSQL store: the gRPC address the other coordinators name when they send a client to this one, the leader (default: --grpc-listen)',
    default: '',
  },
  leaderLease: {
    type: 'duration',
    flag: '--leader-lease',
    env: 'PGS_LEADER_LEASE',
    description:
      'with a PostgreSQL store: how long the leader lease lasts (renewed every quarter of it); a dead leader is replaced within about this plus a quarter, a longer one rides out a slow store or a loaded leader without changing hands',
    default: 2000,
    min: 1000,
    max: 60_000,
  },
  allowInit: {
    type: 'bool',
    flag: '--allow-init',
    env: 'PGS_ALLOW_INIT',
    description: 'create an empty store when the data dir has never held one (a data dir that did and lost it is always refused)',
    default: true,
  },
  heartbeatInterval: {
    type: 'duration',
    flag: '--heartbeat-interval',
    env: 'PGS_HEARTBEAT_INTERVAL',
    description: 'how often agents send heartbeats (told to them in Welcome)',
    default: 1000,
    min: 100,
  },
  hostTtl: {
    type: 'duration',
    flag: '--host-ttl',
    env: 'PGS_HOST_TTL',
    description: 'a host with no heartbeat for this long is UNREACHABLE',
    default: 3000,
    min: 200,
  },
  hostLostConfirm: {
    type: 'duration',
    flag: '--host-lost-confirm',
    env: 'PGS_HOST_LOST_CONFIRM',
    description:
      'a host whose agent stream broke (a reset, not a goodbye) and that stays silent this long is DOWN (its single-node tenants answer 57P03 host down, its primaries fail over; fenced by their lease unless a replica or router saw the primary gone too); a partition (no reset) still waits for host-ttl + host-down-grace',
    default: 5000,
    min: 100,
  },
  hostDownGrace: {
    type: 'duration',
    flag: '--host-down-grace',
    env: 'PGS_HOST_DOWN_GRACE',
    description: 'an UNREACHABLE host is DOWN after this much more silence (its primaries fail over)',
    default: 4000,
    min: 0,
  },
  agentLease: {
    type: 'duration',
    flag: '--agent-lease',
    env: 'PGS_AGENT_LEASE',
    description:
      'how long an agent may go without the coordinator before it must stop its primaries that have replicas (told in Welcome); keep it below host-ttl + host-down-grace so a lost host is already fenced when it is declared DOWN',
    default: 5000,
    min: 1000,
  },
  reconcileInterval: {
    type: 'duration',
    flag: '--reconcile-interval',
    env: 'PGS_RECONCILE_INTERVAL',
    description: 'period of the scheduler/reconciler loop (liveness, placement, retries)',
    default: 250,
    min: 10,
  },
  idleCheckInterval: {
    type: 'duration',
    flag: '--idle-check-interval',
    env: 'PGS_IDLE_CHECK_INTERVAL',
    description: 'period of the idle-suspend check',
    default: 1_000,
    min: 50,
  },
  routerReportMaxAge: {
    type: 'duration',
    flag: '--router-report-max-age',
    env: 'PGS_ROUTER_REPORT_MAX_AGE',
    description: 'a router client report older than this is unknown (no tenant counts as idle)',
    default: 15_000,
    min: 100,
  },
  wakeRate: { type: 'number', flag: '--wake-rate', env: 'PGS_WAKE_RATE', description: 'fleet-wide wakes of suspended tenants per second', default: 20, min: 1 },
  wakeBurst: { type: 'number', flag: '--wake-burst', env: 'PGS_WAKE_BURST', description: 'wakes allowed at once above the rate', default: 40, min: 1 },
  retryBase: {
    type: 'duration',
    flag: '--retry-base',
    env: 'PGS_RETRY_BASE',
    description: 'first retry delay of a failed realization (doubles each failure)',
    default: 2000,
    min: 10,
  },
  retryMax: {
    type: 'duration',
    flag: '--retry-max',
    env: 'PGS_RETRY_MAX',
    description: 'longest retry delay of a failed realization',
    default: 120000,
    min: 10,
  },
  placementStrategy: {
    type: 'string',
    flag: '--placement-strategy',
    env: 'PGS_PLACEMENT_STRATEGY',
    description: 'placement policy',
    default: 'binpack',
    choices: ['binpack', 'spread'],
  },
  maxCreatingPerHost: {
    type: 'int',
    flag: '--max-creating-per-host',
    env: 'PGS_MAX_CREATING_PER_HOST',
    description:
      "placement passes over a host already creating this many instances while another host that fits creates fewer, so a burst of creates is shared by the hosts instead of queueing on the one bin-packing picks; hosts with a ready spare left come first (0 = ignore creations in flight and spares; the default matches the agents' default --spare-clones)",
    default: 8,
    min: 0,
    max: 1000,
  },
  cpuOvercommit: {
    type: 'number',
    flag: '--cpu-overcommit',
    env: 'PGS_CPU_OVERCOMMIT',
    description: 'CPU may be promised this many times over (memory and disk never are)',
    default: 1,
    min: 1,
    max: 16,
  },
  zoneLabel: {
    type: 'string',
    flag: '--zone-label',
    env: 'PGS_ZONE_LABEL',
    description: 'host label naming its failure zone; replicas go to different zones',
    default: 'zone',
  },
  failoverUnhealthyAfter: {
    type: 'duration',
    flag: '--failover-unhealthy-after',
    env: 'PGS_FAILOVER_UNHEALTHY_AFTER',
    description: 'a primary unhealthy this long while its host is up fails over to a replica',
    default: 10000,
    min: 100,
  },
  promoteTimeout: {
    type: 'duration',
    flag: '--promote-timeout',
    env: 'PGS_PROMOTE_TIMEOUT',
    description: 'a replica that has not confirmed its promotion by then is fenced in turn and another is chosen',
    default: 30000,
    min: 100,
  },
  switchoverTimeout: {
    type: 'duration',
    flag: '--switchover-timeout',
    env: 'PGS_SWITCHOVER_TIMEOUT',
    description: 'a switchover whose old primary is not fenced, or whose target has not caught up, by then is rolled back',
    default: 30000,
    min: 100,
  },
  switchGrace: {
    type: 'duration',
    flag: '--switch-grace',
    env: 'PGS_SWITCH_GRACE',
    description:
      'in a switchover or live move, how long transactions already open may finish before the old primary stops (the routers hold new ones meanwhile; keep it under their --hold-timeout)',
    default: 3000,
    min: 0,
  },
  moveCopyTimeout: {
    type: 'duration',
    flag: '--move-copy-timeout',
    env: 'PGS_MOVE_COPY_TIMEOUT',
    description: 'a live move whose copy on the target has not caught up by then is abandoned (the copy is removed)',
    default: 6 * 3600_000,
    min: 1000,
  },
  moveCheckpointTimeout: {
    type: 'duration',
    flag: '--move-checkpoint-timeout',
    env: 'PGS_MOVE_CHECKPOINT_TIMEOUT',
    description:
      "in a live move of a primary, how long the switch waits for the old primary's CHECKPOINT (run while clients still work, it shortens the fenced shutdown inside their pause) before going ahead without it; 0 = no checkpoint",
    default: 30_000,
    min: 0,
  },
  drainParallel: {
    type: 'int',
    flag: '--drain-parallel',
    env: 'PGS_DRAIN_PARALLEL',
    description: 'live moves a host drain runs at a time unless the request says',
    default: 2,
    min: 1,
  },
  switchoverMaxLag: {
    type: 'int',
    flag: '--switchover-max-lag',
    env: 'PGS_SWITCHOVER_MAX_LAG',
    description: 'a switchover target further behind than this many bytes is refused up front',
    default: 16 * 1024 * 1024,
    min: 0,
  },
  replicaReplaceDelay: {
    type: 'duration',
    flag: '--replica-replace-delay',
    env: 'PGS_REPLICA_REPLACE_DELAY',
    description: 'a replica whose host has been DOWN this long is re-created on another host',
    default: 300000,
    min: 0,
  },
  secretKeyFile: {
    type: 'string',
    flag: '--secret-key-file',
    env: 'PGS_SECRET_KEY_FILE',
    description: 'key file (mode 0600) for secrets at rest; empty = PGS_SECRET_KEYS / PGS_SECRET_KEY, else <data-dir>/secret.key (created)',
    default: '',
  },
  insecure: {
    type: 'bool',
    flag: '--insecure',
    env: 'PGS_INSECURE',
    description: 'serve gRPC in plaintext without certificates (test machines only; a warning is logged at every start); operators still need tokens',
    default: false,
  },
  tlsCa: {
    type: 'string',
    flag: '--tls-ca',
    env: 'PGS_TLS_CA',
    description:
      'own PKI: CA file that agents, routers and operators are checked against (with --tls-cert/--tls-key; then no fleet CA is created and Join is unavailable)',
    default: '',
  },
  tlsCert: { type: 'string', flag: '--tls-cert', env: 'PGS_TLS_CERT', description: "own PKI: the coordinator's server certificate (chain) file", default: '' },
  tlsKey: { type: 'string', flag: '--tls-key', env: 'PGS_TLS_KEY', description: "own PKI: the coordinator's private key file (mode 0600)", default: '' },
  tlsNames: {
    type: 'list',
    flag: '--tls-names',
    env: 'PGS_TLS_NAMES',
    description: "extra DNS names / IP addresses for the coordinator's certificate (localhost, 127.0.0.1 and the --grpc-listen host are always in it)",
    default: [] as string[],
  },
  instanceTls: {
    type: 'string',
    flag: '--instance-tls',
    env: 'PGS_INSTANCE_TLS',
    description:
      'TLS between routers and tenant instances and between standbys and primaries (instances refuse plaintext network connections; certificates from the fleet CA); off = plaintext, warned about at every start and in the fleet status',
    default: 'on',
    choices: ['on', 'off'],
  },
  certLifetime: {
    type: 'duration',
    flag: '--cert-lifetime',
    env: 'PGS_CERT_LIFETIME',
    description: 'lifetime of the certificates the fleet CA issues to agents and routers (renewed at 2/3)',
    default: 24 * 3600_000,
    min: 60_000,
  },
  adminTokenFile: {
    type: 'string',
    flag: '--admin-token-file',
    env: 'PGS_ADMIN_TOKEN_FILE',
    description: 'where the first start writes the initial fleet-admin token (mode 0600); empty = <data-dir>/admin.token',
    default: '',
  },
  routeSnapshotPart: {
    type: 'int',
    flag: '--route-snapshot-part',
    env: 'PGS_ROUTE_SNAPSHOT_PART',
    description: "routes per WatchRoutes message of a snapshot (to routers that take parts) or a catch-up; keeps each under gRPC's 4 MiB default",
    default: 2000,
    min: 1,
  },
  routeQueueKib: {
    type: 'int',
    flag: '--route-queue-kib',
    env: 'PGS_ROUTE_QUEUE_KIB',
    description:
      'route changes a router may have unsent (KiB) before its stream is cut off; it resumes from its revision (the changes are shared by every router, so this bounds the whole feed)',
    default: 262144,
    min: 16,
  },
  routeHistory: {
    type: 'int',
    flag: '--route-history',
    env: 'PGS_ROUTE_HISTORY',
    description: 'route changes kept for WatchRoutes deltas; a router further behind gets a snapshot',
    default: 100000,
    min: 10,
  },
  backupRepo: {
    type: 'string',
    flag: '--backup-repo',
    env: 'PGS_BACKUP_REPO',
    description:
      'the fleet backup repository: posix:<dir> (a directory every host reaches, e.g. a shared mount) or s3 (see --backup-s3-*); empty = backups off',
    default: '',
  },
  backupS3Endpoint: {
    type: 'string',
    flag: '--backup-s3-endpoint',
    env: 'PGS_BACKUP_S3_ENDPOINT',
    description:
      's3: endpoint host name (must match its TLS certificate, e.g. localhost); the key and secret come from PGS_BACKUP_S3_KEY / PGS_BACKUP_S3_SECRET and are kept sealed in the store',
    default: '',
  },
  backupS3Port: { type: 'int', flag: '--backup-s3-port', env: 'PGS_BACKUP_S3_PORT', description: 's3: endpoint port', default: 443, min: 1, max: 65535 },
  backupS3Bucket: { type: 'string', flag: '--backup-s3-bucket', env: 'PGS_BACKUP_S3_BUCKET', description: 's3: bucket', default: '' },
  backupS3Region: { type: 'string', flag: '--backup-s3-region', env: 'PGS_BACKUP_S3_REGION', description: 's3: region', default: 'us-east-1' },
  backupS3Path: { type: 'string', flag: '--backup-s3-path', env: 'PGS_BACKUP_S3_PATH', description: 's3: path inside the bucket', default: '/pgs' },
  backupS3CaFile: {
    type: 'string',
    flag: '--backup-s3-ca-file',
    env: 'PGS_BACKUP_S3_CA_FILE',
    description: 's3: PEM CA bundle the endpoint is checked against (sent to agents); empty = the system CAs',
    default: '',
  },
  backupS3PathStyle: {
    type: 'bool',
    flag: '--backup-s3-path-style',
    env: 'PGS_BACKUP_S3_PATH_STYLE',
    description: 's3: path-style URLs (bucket in the path), as most S3-compatible servers need',
    default: true,
  },
  backupFullInterval: {
    type: 'duration',
    flag: '--backup-full-interval',
    env: 'PGS_BACKUP_FULL_INTERVAL',
    description: "fleet default: a full backup this often (a tenant's spec may override)",
    default: 168 * 3_600_000,
    min: 60_000,
  },
  backupDiffInterval: {
    type: 'duration',
    flag: '--backup-diff-interval',
    env: 'PGS_BACKUP_DIFF_INTERVAL',
    description: 'fleet default: a differential backup this often (0 = none)',
    default: 24 * 3_600_000,
    min: 0,
  },
  backupIncrInterval: {
    type: 'duration',
    flag: '--backup-incr-interval',
    env: 'PGS_BACKUP_INCR_INTERVAL',
    description: 'fleet default: an incremental backup this often (0 = none)',
    default: 0,
    min: 0,
  },
  backupRetention: {
    type: 'duration',
    flag: '--backup-retention',
    env: 'PGS_BACKUP_RETENTION',
    description: 'fleet default: how far back a restore must be possible (at least 24h; the agent keeps whole days, rounded up)',
    default: 168 * 3_600_000,
    min: 24 * 3_600_000,
  },
  backupArchiveTimeout: {
    type: 'duration',
    flag: '--backup-archive-timeout',
    env: 'PGS_BACKUP_ARCHIVE_TIMEOUT',
    description: 'fleet default: PostgreSQL archive_timeout, the longest a commit waits to be archived (1s..1h)',
    default: 60_000,
    min: 1000,
    max: 3_600_000,
  },
  backupRetryAfter: {
    type: 'duration',
    flag: '--backup-retry-after',
    env: 'PGS_BACKUP_RETRY_AFTER',
    description: 'a failed scheduled backup is tried again after this long',
    default: 600_000,
    min: 1000,
  },
  backupTimeout: {
    type: 'duration',
    flag: '--backup-timeout',
    env: 'PGS_BACKUP_TIMEOUT',
    description: 'a backup with no answer from its agent after this long is marked FAILED',
    default: 6 * 3_600_000,
    min: 10_000,
  },
  versions: {
    type: 'list',
    flag: '--versions',
    env: 'PGS_VERSIONS',
    description:
      'PostgreSQL majors offered besides those the hosts report, major=image (the docker image of each); the first is the default until a host runs a newer major with replicas and backups',
    default: ['15=localhost/pgs-postgres:15'] as string[],
  },
  logLevel: {
    type: 'string',
    flag: '--log-level',
    env: 'PGS_LOG_LEVEL',
    description: 'log level',
    default: 'info',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
  },
} as const;

/** The typed, frozen config. */
export type CoordinatorConfig = ConfigOf<typeof CONFIG_SPEC>;

const USAGE = `pgs-coordinator — the fleet's source of truth (API, store, scheduler, host liveness, agent streams, route sync)

Usage: node apps/coordinator/dist/main.js [options]`;

/** Reads the config (or the help text) from argv and env. */
export function readConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult<typeof CONFIG_SPEC> {
  return loadConfig(CONFIG_SPEC, argv, env, USAGE);
}

/** Splits "host:port" (IPv6 in brackets) for listening. */
export function splitHostPort(address: string, flag: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  const port = Number(m?.[2]);
  if (!m || !m[1] || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${flag}: "${address}" is not host:port`);
  }
  return { host: m[1], port };
}
