// The router's options: every flag also as a PGS_* variable, documented by --help from this table.
import { ConfigError, loadConfig, type ConfigOf, type ConfigResult } from '@pgs/service-kit';
import { DEFAULT_ROUTING_ORDER, validateRoutingOrder, type RoutingSource } from '@pgs/tenancy';
import { parseHostPort, type HostPort } from './listen-address.js';

/** The option table (README.md lists the same options). */
export const ROUTER_OPTIONS = {
  listen: { type: 'string', flag: '--listen', env: 'PGS_LISTEN', description: 'host:port for PostgreSQL clients', default: '127.0.0.1:5432' },
  coordinator: {
    type: 'string',
    flag: '--coordinator',
    env: 'PGS_COORDINATOR',
    description: 'coordinator gRPC address (route feed); several coordinators: every address, comma-separated (the router finds the leader)',
    default: '127.0.0.1:7400',
  },
  cachePath: { type: 'string', flag: '--cache-path', env: 'PGS_CACHE_PATH', description: 'SQLite route cache file', default: 'router-cache.db' },
  routerId: { type: 'string', flag: '--router-id', env: 'PGS_ROUTER_ID', description: "this router's id in the fleet", default: 'r1' },
  cancelListen: {
    type: 'string',
    flag: '--cancel-listen',
    env: 'PGS_CANCEL_LISTEN',
    description: 'host:port where peers forward CancelRequests (port 0 = any)',
    default: '127.0.0.1:0',
  },
  cancelAdvertise: {
    type: 'string',
    flag: '--cancel-advertise',
    env: 'PGS_CANCEL_ADVERTISE',
    description: 'cancel address announced to peers (default: the bound --cancel-listen address)',
  },
  cancelSecret: {
    type: 'string',
    flag: '--cancel-secret',
    env: 'PGS_CANCEL_SECRET',
    description: 'fleet-wide secret that authenticates cancel keys (same on every router; default: random per process)',
  },
  tlsCert: { type: 'string', flag: '--tls-cert', env: 'PGS_TLS_CERT', description: 'PEM certificate chain file; enables TLS (reloaded on SIGHUP)' },
  tlsKey: { type: 'string', flag: '--tls-key', env: 'PGS_TLS_KEY', description: 'PEM private key file (reloaded on SIGHUP)' },
  tlsRequire: { type: 'bool', flag: '--tls-require', env: 'PGS_TLS_REQUIRE', description: 'refuse clients that do not use TLS', default: false },
  sniDomain: {
    type: 'string',
    flag: '--sni-domain',
    env: 'PGS_SNI_DOMAIN',
    description: 'domain under which <tenant>.<domain> SNI names route (e.g. db.example.com)',
  },
  routingOrder: {
    type: 'list',
    flag: '--routing-order',
    env: 'PGS_ROUTING_ORDER',
    description: 'tenant sources in priority order: sni,options,user_suffix,database,user',
    default: [...DEFAULT_ROUTING_ORDER] as string[],
  },
  opsListen: { type: 'string', flag: '--ops-listen', env: 'PGS_OPS_LISTEN', description: 'host:port for /healthz, /readyz, /metrics', default: '127.0.0.1:0' },
  startupTimeout: {
    type: 'duration',
    flag: '--startup-timeout',
    env: 'PGS_STARTUP_TIMEOUT',
    description: 'time a client has to complete TLS and send its startup packet',
    default: 10_000,
    min: 1,
  },
  authTimeout: {
    type: 'duration',
    flag: '--auth-timeout',
    env: 'PGS_AUTH_TIMEOUT',
    description: 'time from accept until the server is ready for queries (authentication included)',
    default: 60_000,
    min: 1,
  },
  wakeTimeout: {
    type: 'duration',
    flag: '--wake-timeout',
    env: 'PGS_WAKE_TIMEOUT',
    description: 'how long a client of a suspended tenant is held while it wakes (then 57P03)',
    default: 30_000,
    min: 1,
  },
  clientReportInterval: {
    type: 'duration',
    flag: '--client-report-interval',
    env: 'PGS_CLIENT_REPORT_INTERVAL',
    description: 'period of the per-tenant client counts sent to the coordinator (idle suspend)',
    default: 2_000,
    min: 50,
  },
  maxStartups: {
    type: 'int',
    flag: '--max-startups',
    env: 'PGS_MAX_STARTUPS',
    description: 'connections allowed at once before they are authenticated',
    default: 1000,
    min: 1,
  },
  backendConnectTimeout: {
    type: 'duration',
    flag: '--backend-connect-timeout',
    env: 'PGS_BACKEND_CONNECT_TIMEOUT',
    description: 'TCP connect timeout to a tenant instance',
    default: 5000,
    min: 1,
  },
  backendRetries: {
    type: 'int',
    flag: '--backend-retries',
    env: 'PGS_BACKEND_RETRIES',
    description: 'extra connect attempts when the route changed after a failure',
    default: 2,
    min: 0,
    max: 10,
  },
  holdTimeout: {
    type: 'duration',
    flag: '--hold-timeout',
    env: 'PGS_HOLD_TIMEOUT',
    description: 'how long a client waits while its tenant switches to another instance (live move, switchover) before 57P03',
    default: 10_000,
    min: 0,
  },
  routeChangeWait: {
    type: 'duration',
    flag: '--route-change-wait',
    env: 'PGS_ROUTE_CHANGE_WAIT',
    description: 'after a failed backend connect, how long to wait for a new route before refusing',
    default: 1000,
    min: 0,
  },
  shutdownTimeout: {
    type: 'duration',
    flag: '--shutdown-timeout',
    env: 'PGS_SHUTDOWN_TIMEOUT',
    description: 'how long open client connections may run on after a stop signal',
    default: 30_000,
    min: 0,
  },
  syncBackoffMin: {
    type: 'duration',
    flag: '--sync-backoff-min',
    env: 'PGS_SYNC_BACKOFF_MIN',
    description: 'first reconnect delay of the route feed',
    default: 250,
    min: 1,
  },
  syncBackoffMax: {
    type: 'duration',
    flag: '--sync-backoff-max',
    env: 'PGS_SYNC_BACKOFF_MAX',
    description: 'longest reconnect delay of the route feed',
    default: 10_000,
    min: 1,
  },
  insecure: {
    type: 'bool',
    flag: '--insecure',
    env: 'PGS_INSECURE',
    description: 'plaintext gRPC to the coordinator, no certificate (test machines only; warns at every start)',
    default: false,
  },
  joinToken: {
    type: 'string',
    flag: '--join-token',
    env: 'PGS_JOIN_TOKEN',
    description: 'one-time join token (pgsctl token create --kind router) used at the first start to get a fleet certificate',
  },
  identityDir: {
    type: 'string',
    flag: '--identity-dir',
    env: 'PGS_IDENTITY_DIR',
    description: 'where the fleet certificate and key are kept (default: identity-<router-id> beside --cache-path)',
  },
  coordinatorCa: {
    type: 'string',
    flag: '--coordinator-ca',
    env: 'PGS_COORDINATOR_CA',
    description: 'own PKI: CA file to trust the coordinator with (also for join tokens without a CA pin)',
  },
  identityCert: {
    type: 'string',
    flag: '--identity-cert',
    env: 'PGS_IDENTITY_CERT',
    description: "own PKI: this router's client certificate for the coordinator (names router:<id>)",
  },
  identityKey: { type: 'string', flag: '--identity-key', env: 'PGS_IDENTITY_KEY', description: 'own PKI: the key of --identity-cert (mode 0600)' },
  instanceCa: {
    type: 'string',
    flag: '--instance-ca',
    env: 'PGS_INSTANCE_CA',
    description: 'CA file instance certificates are verified against when TLS to instances is on (default: the fleet CA the router joined with)',
  },
  workers: {
    type: 'int',
    flag: '--workers',
    env: 'PGS_WORKERS',
    description: 'client-serving worker processes (node:cluster); 1 = serve in this process. The primary keeps the route feed, cache writes and ops endpoint',
    default: 1,
    min: 1,
    max: 64,
  },
  poolSize: {
    type: 'int',
    flag: '--pool-size',
    env: 'PGS_POOL_SIZE',
    description: 'pooled server connections per tenant, user and database (pool mode session)',
    default: 20,
    min: 1,
  },
  poolMaxBackends: {
    type: 'int',
    flag: '--pool-max-backends',
    env: 'PGS_POOL_MAX_BACKENDS',
    description: 'pooled server connections at this router, all tenants (shared out over --workers)',
    default: 1000,
    min: 1,
  },
  poolIdleTimeout: {
    type: 'duration',
    flag: '--pool-idle-timeout',
    env: 'PGS_POOL_IDLE_TIMEOUT',
    description: 'an idle pooled server connection is closed after this long',
    default: 300_000,
    min: 1,
  },
  poolWaitTimeout: {
    type: 'duration',
    flag: '--pool-wait-timeout',
    env: 'PGS_POOL_WAIT_TIMEOUT',
    description: 'how long a client waits for a pooled server connection before 53300',
    default: 10_000,
    min: 1,
  },
  poolPreparedStatements: {
    type: 'int',
    flag: '--pool-prepared-statements',
    env: 'PGS_POOL_PREPARED_STATEMENTS',
    description: 'pool mode transaction: named statements each server connection keeps prepared; the least recently used is closed beyond',
    default: 100,
    min: 1,
  },
  poolResetTimeout: {
    type: 'duration',
    flag: '--pool-reset-timeout',
    env: 'PGS_POOL_RESET_TIMEOUT',
    description: 'time for DISCARD ALL when a client leaves; a server that does not finish is closed',
    default: 5000,
    min: 1,
  },
  authFailureLimit: {
    type: 'int',
    flag: '--auth-failure-limit',
    env: 'PGS_AUTH_FAILURE_LIMIT',
    description: 'failed logins per tenant and user per --auth-failure-window before further tries are refused (0 = no limit)',
    default: 10,
    min: 0,
  },
  authFailureWindow: {
    type: 'duration',
    flag: '--auth-failure-window',
    env: 'PGS_AUTH_FAILURE_WINDOW',
    description: 'window of --auth-failure-limit',
    default: 60_000,
    min: 1,
  },
  logLevel: {
    type: 'string',
    flag: '--log-level',
    env: 'PGS_LOG_LEVEL',
    description: 'log level',
    default: 'info',
    choices: ['debug', 'info', 'warn', 'error'],
  },
} as const;

type RawConfig = ConfigOf<typeof ROUTER_OPTIONS>;

/** The validated router config. */
export interface RouterConfig extends Omit<RawConfig, 'listen' | 'cancelListen' | 'opsListen' | 'routingOrder'> {
  readonly listen: HostPort;
  readonly cancelListen: HostPort;
  readonly opsListen: HostPort;
  readonly routingOrder: readonly RoutingSource[];
}

/** The usage line of --help. */
export const USAGE = "pgs-router: the PostgreSQL edge router (routes clients to their tenant's instance)\n\nUsage: pgs-router [options]";

/** Reads flags and PGS_* variables; `help` when --help was asked for. Throws ConfigError on bad values. */
export function readRouterConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { kind: 'help'; text: string } | { kind: 'config'; config: RouterConfig } {
  const result: ConfigResult<typeof ROUTER_OPTIONS> = loadConfig(ROUTER_OPTIONS, argv, env, USAGE);
  if (result.kind === 'help') return result;
  const raw = result.config;
  if ((raw.tlsCert === undefined) !== (raw.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  if (raw.tlsRequire && raw.tlsCert === undefined) throw new ConfigError('--tls-require needs --tls-cert and --tls-key');
  if (raw.syncBackoffMin > raw.syncBackoffMax) throw new ConfigError('--sync-backoff-min must not exceed --sync-backoff-max');
  let routingOrder: RoutingSource[];
  try {
    routingOrder = validateRoutingOrder(raw.routingOrder, '--routing-order');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const config: RouterConfig = {
    ...raw,
    listen: parseHostPort(raw.listen, '--listen'),
    cancelListen: parseHostPort(raw.cancelListen, '--cancel-listen'),
    opsListen: parseHostPort(raw.opsListen, '--ops-listen'),
    routingOrder,
  };
  if (raw.cancelAdvertise !== undefined) parseHostPort(raw.cancelAdvertise, '--cancel-advertise');
  return { kind: 'config', config: Object.freeze(config) };
}
