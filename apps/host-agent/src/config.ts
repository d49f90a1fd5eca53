// The agent's options: every flag also as a PGS_* variable, documented by --help from this table.
import net from 'node:net';
import { ConfigError, loadConfig, type ConfigOf } from '@pgs/service-kit';
import { parseCpu, parseSize, validateHostId, validateLabels, type Resources } from '@pgs/tenancy';
import { parsePortRange, type PortRange } from './runtime/port-allocator.js';
import { DEFAULT_BIN_DIR_PATTERNS } from './runtime/postgres-install.js';
import type { RuntimeKind } from './runtime/runtime.js';

/** The option table (README.md lists the same options). */
export const AGENT_OPTIONS = {
  hostId: { type: 'string', flag: '--host-id', env: 'PGS_HOST_ID', description: 'stable id of this host in the fleet ([a-z0-9][a-z0-9_.-]*)', required: true },
  address: {
    type: 'string',
    flag: '--address',
    env: 'PGS_ADDRESS',
    description: "the host's advertised address: tenant instances listen on it only, routers connect to it",
    default: '127.0.0.1',
  },
  coordinator: {
    type: 'string',
    flag: '--coordinator',
    env: 'PGS_COORDINATOR',
    description: 'coordinator gRPC address (agent stream); several coordinators: every address, comma-separated (the agent finds the leader)',
    default: '127.0.0.1:7400',
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
    description: 'one-time join token (pgsctl token create --kind host --id <host-id>) used at the first start to get a fleet certificate',
  },
  identityDir: {
    type: 'string',
    flag: '--identity-dir',
    env: 'PGS_IDENTITY_DIR',
    description: 'where the fleet certificate and key are kept (default: <data-root>/identity)',
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
    description: "own PKI: this agent's client certificate for the coordinator (names host:<host-id>)",
  },
  identityKey: { type: 'string', flag: '--identity-key', env: 'PGS_IDENTITY_KEY', description: 'own PKI: the key of --identity-cert (mode 0600)' },
  dataRoot: {
    type: 'string',
    flag: '--data-root',
    env: 'PGS_DATA_ROOT',
    description: 'directory for instance data, templates and state (process runtime) and socket dirs (docker)',
    required: true,
  },
  runtime: {
    type: 'string',
    flag: '--runtime',
    env: 'PGS_RUNTIME',
    description: 'instance runtime driver',
    default: 'process',
    choices: ['process', 'docker'],
  },
  portRange: { type: 'string', flag: '--port-range', env: 'PGS_PORT_RANGE', description: 'ports instances may listen on, first-last', default: '20000-20999' },
  opsListen: { type: 'string', flag: '--ops-listen', env: 'PGS_OPS_LISTEN', description: 'host:port for /healthz, /readyz, /metrics', default: '127.0.0.1:0' },
  labels: {
    type: 'list',
    flag: '--labels',
    env: 'PGS_LABELS',
    description: 'host labels for placement, key=value,... (e.g. zone=a,region=eu)',
    default: [] as string[],
  },
  cpu: { type: 'string', flag: '--cpu', env: 'PGS_CPU', description: 'cpu offered to tenants, cores (2, 1.5, 1500m); default: detected cores' },
  memory: {
    type: 'string',
    flag: '--memory',
    env: 'PGS_MEMORY',
    description: 'memory offered to tenants (e.g. 16Gi, 2048 = MiB); default: detected physical memory',
  },
  disk: { type: 'string', flag: '--disk', env: 'PGS_DISK', description: "disk offered to tenants (e.g. 500Gi); default: size of the data root's filesystem" },
  allowCidrs: {
    type: 'list',
    flag: '--allow-cidrs',
    env: 'PGS_ALLOW_CIDRS',
    description: 'networks besides --address whose clients (routers) may log in to instances with SCRAM',
    default: ['127.0.0.0/8'] as string[],
  },
  postgresBinDirs: {
    type: 'list',
    flag: '--postgres-bin-dirs',
    env: 'PGS_POSTGRES_BIN_DIRS',
    description:
      'process runtime: bin dirs of the PostgreSQL majors this host runs (postgres, initdb; * matches one directory level); the first dir of a major wins',
    default: [...DEFAULT_BIN_DIR_PATTERNS] as string[],
  },
  pgBinDir: {
    type: 'string',
    flag: '--pg-bin-dir',
    env: 'PGS_PG_BIN_DIR',
    description: "process runtime: run only this bin dir's major (postgres, initdb), ignoring --postgres-bin-dirs",
  },
  pgOsUser: {
    type: 'string',
    flag: '--pg-os-user',
    env: 'PGS_PG_OS_USER',
    description: 'process runtime: OS user postgres runs as when the agent is root',
    default: 'postgres',
  },
  cgroupRoot: {
    type: 'string',
    flag: '--cgroup-root',
    env: 'PGS_CGROUP_ROOT',
    description: 'process runtime: cgroup v2 mount for cpu/memory limits (default: /sys/fs/cgroup, or its unified/ in a hybrid layout)',
  },
  spareClones: {
    type: 'int',
    flag: '--spare-clones',
    env: 'PGS_SPARE_CLONES',
    description:
      'process runtime: ready copies of the template kept for fast creates (a burst of up to this many creates on the host waits for no copy; ~45 MB of disk each)',
    default: 8,
    min: 0,
    max: 32,
  },
  dockerSocket: {
    type: 'string',
    flag: '--docker-socket',
    env: 'PGS_DOCKER_SOCKET',
    description: "docker runtime: Docker Engine API unix socket (Docker or Podman's service)",
    default: '/var/run/docker.sock',
  },
  dockerImage: {
    type: 'string',
    flag: '--docker-image',
    env: 'PGS_DOCKER_IMAGE',
    description: 'docker runtime: image when the spec names none; {version} is replaced by the major',
    default: 'localhost/pgs-postgres:{version}',
  },
  defaultVersion: {
    type: 'string',
    flag: '--default-version',
    env: 'PGS_DEFAULT_VERSION',
    description: 'docker runtime: major used when a spec names none',
    default: '15',
  },
  createConcurrency: {
    type: 'int',
    flag: '--create-concurrency',
    env: 'PGS_CREATE_CONCURRENCY',
    description:
      'instances created at the same time, at most; the rest wait in order (creating is CPU-bound: a few at a time finish one after another, many at once all finish late); 0 = the number of CPU cores',
    default: 0,
    min: 0,
    max: 1000,
  },
  startTimeout: {
    type: 'duration',
    flag: '--start-timeout',
    env: 'PGS_START_TIMEOUT',
    description: 'how long an instance may take to accept connections after start',
    default: 60_000,
    min: 1,
  },
  stopTimeout: {
    type: 'duration',
    flag: '--stop-timeout',
    env: 'PGS_STOP_TIMEOUT',
    description: 'fast shutdown time before an immediate shutdown',
    default: 10_000,
    min: 1,
  },
  healthInterval: {
    type: 'duration',
    flag: '--health-interval',
    env: 'PGS_HEALTH_INTERVAL',
    description: 'period of instance health checks',
    default: 2_000,
    min: 50,
  },
  senderWatchInterval: {
    type: 'duration',
    flag: '--sender-watch-interval',
    env: 'PGS_SENDER_WATCH_INTERVAL',
    description:
      "period of the look at running replicas' walreceivers (one kept connection each): a replica that loses its primary is reported within it, which lets the coordinator confirm a lost host quickly (0 = off)",
    default: 200,
    min: 0,
  },
  reportInterval: {
    type: 'duration',
    flag: '--report-interval',
    env: 'PGS_REPORT_INTERVAL',
    description: 'period of instance reports to the coordinator (changed and replicated instances each time)',
    default: 5_000,
    min: 50,
  },
  fullReportInterval: {
    type: 'duration',
    flag: '--full-report-interval',
    env: 'PGS_FULL_REPORT_INTERVAL',
    description: 'an instance whose report did not change is still reported this often (keep it well under 30s: the idle watcher reads health up to 30s old)',
    default: 15_000,
    min: 50,
  },
  heartbeatInterval: {
    type: 'duration',
    flag: '--heartbeat-interval',
    env: 'PGS_HEARTBEAT_INTERVAL',
    description: "heartbeat period until the coordinator's Welcome names one",
    default: 2_000,
    min: 50,
  },
  reconnectMin: {
    type: 'duration',
    flag: '--reconnect-min',
    env: 'PGS_RECONNECT_MIN',
    description: 'first reconnect delay of the agent stream',
    default: 250,
    min: 1,
  },
  reconnectMax: {
    type: 'duration',
    flag: '--reconnect-max',
    env: 'PGS_RECONNECT_MAX',
    description: 'longest reconnect delay of the agent stream',
    default: 10_000,
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

type RawConfig = ConfigOf<typeof AGENT_OPTIONS>;

/** The validated agent config. */
export interface AgentConfig extends Omit<RawConfig, 'runtime' | 'portRange' | 'labels' | 'cpu' | 'memory' | 'disk' | 'opsListen'> {
  readonly runtime: RuntimeKind;
  readonly portRange: PortRange;
  readonly labels: Readonly<Record<string, string>>;
  /** Capacity overrides (absent fields are detected). */
  readonly capacity: Partial<Resources>;
  readonly opsListen: { host: string; port: number };
}

/** The usage line of --help. */
export const USAGE =
  'pgs-host-agent: runs tenant PostgreSQL instances on this host as the coordinator wants them\n\nUsage: pgs-host-agent --host-id <id> --data-root <dir> [options]';

/** Rethrows a domain validation error as a ConfigError naming the flag. */
function asConfig<T>(flag: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
}

function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${flag}: "${text}" is not host:port (e.g. 127.0.0.1:0)`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function parseLabels(items: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--labels: "${item}" is not key=value`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return asConfig('--labels', () => validateLabels(labels, 'labels'));
}

/** Reads flags and PGS_* variables; `help` when --help was asked for. Throws ConfigError on bad values. */
export function readAgentConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { kind: 'help'; text: string } | { kind: 'config'; config: AgentConfig } {
  const result = loadConfig(AGENT_OPTIONS, argv, env, USAGE);
  if (result.kind === 'help') return result;
  const raw = result.config;
  asConfig('--host-id', () => validateHostId(raw.hostId, 'host-id'));
  if (net.isIP(raw.address) === 0) throw new ConfigError(`--address: "${raw.address}" is not an IP address (instances listen on it and routers connect to it)`);
  const portRange = parsePortRange(raw.portRange);
  if (!portRange) throw new ConfigError(`--port-range: "${raw.portRange}" is not first-last within 1-65535 (e.g. 20000-20999)`);
  if (raw.reconnectMin > raw.reconnectMax) throw new ConfigError('--reconnect-min must not exceed --reconnect-max');
  for (const cidr of raw.allowCidrs) {
    const [ip, bits] = cidr.split('/');
    const family = net.isIP(ip ?? '');
    if (family === 0 || bits === undefined || !/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))
      throw new ConfigError(`--allow-cidrs: "${cidr}" is not a CIDR (e.g. 10.0.0.0/8)`);
  }
  const capacity: Partial<Resources> = {};
  if (raw.cpu !== undefined) capacity.cpuMillis = asConfig('--cpu', () => parseCpu(raw.cpu as string, 'cpu'));
  if (raw.memory !== undefined) capacity.memoryMib = asConfig('--memory', () => parseSize(raw.memory as string, 'memory'));
  if (raw.disk !== undefined) capacity.diskMib = asConfig('--disk', () => parseSize(raw.disk as string, 'disk'));
  const config: AgentConfig = {
    ...raw,
    runtime: raw.runtime as RuntimeKind,
    portRange,
    labels: parseLabels(raw.labels),
    capacity,
    opsListen: parseHostPort(raw.opsListen, '--ops-listen'),
  };
  return { kind: 'config', config: Object.freeze(config) };
}
