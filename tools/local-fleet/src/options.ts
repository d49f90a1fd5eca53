/**
 * The launcher's options (flags and PGS_FLEET_* variables, via @pgs/service-kit's config table).
 * The state dir, ports and host addresses are configurable so a test can run a second fleet
 * beside the one a developer has running.
 */
import path from 'node:path';
import { ConfigError, loadConfig, type ConfigOf } from '@pgs/service-kit';

/** The repository root: tools/local-fleet/{src,dist}/ are two levels below it. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

/** The option table. */
export const FLEET_OPTIONS = {
  stateDir: {
    type: 'string',
    flag: '--state-dir',
    env: 'PGS_FLEET_STATE_DIR',
    description: 'where the fleet keeps its state',
    default: path.join(REPO_ROOT, '.pgs', 'local'),
  },
  coordinatorPort: {
    type: 'int',
    flag: '--coordinator-port',
    env: 'PGS_FLEET_COORDINATOR_PORT',
    description: 'coordinator gRPC port (or the next free one)',
    default: 7400,
    min: 1,
    max: 65535,
  },
  coordinators: {
    type: 'int',
    flag: '--coordinators',
    env: 'PGS_FLEET_COORDINATORS',
    description:
      'how many coordinators; more than one runs them on a PostgreSQL store the fleet starts (a primary and a synchronous standby), one leads and the others take over when it dies',
    default: 1,
    min: 1,
    max: 5,
  },
  httpPort: {
    type: 'int',
    flag: '--http-port',
    env: 'PGS_FLEET_HTTP_PORT',
    description: 'coordinator REST port (or the next free one)',
    default: 7480,
    min: 1,
    max: 65535,
  },
  routerPort: {
    type: 'int',
    flag: '--router-port',
    env: 'PGS_FLEET_ROUTER_PORT',
    description: 'first router port (or the first free one from here); the second router takes the next free port',
    default: 5432,
    min: 1,
    max: 65535,
  },
  hostAddresses: {
    type: 'list',
    flag: '--host-addresses',
    env: 'PGS_FLEET_HOST_ADDRESSES',
    description: 'loopback addresses standing for the hosts h1, h2, ... (zones a, b, c, ...)',
    default: ['127.0.0.11', '127.0.0.12', '127.0.0.13'] as string[],
  },
  instancePorts: {
    type: 'string',
    flag: '--instance-ports',
    env: 'PGS_FLEET_INSTANCE_PORTS',
    description: 'port range each agent gives its tenant instances',
    default: '20000-20999',
  },
  hostCpu: {
    type: 'string',
    flag: '--host-cpu',
    env: 'PGS_FLEET_HOST_CPU',
    description: 'CPU cores each local host offers (the hosts share this machine, so this is a budget, not a measurement)',
    default: '8',
  },
  hostMemory: { type: 'string', flag: '--host-memory', env: 'PGS_FLEET_HOST_MEMORY', description: 'memory each local host offers', default: '16Gi' },
  hostDisk: { type: 'string', flag: '--host-disk', env: 'PGS_FLEET_HOST_DISK', description: 'disk each local host offers', default: '256Gi' },
  runtime: {
    type: 'string',
    flag: '--runtime',
    env: 'PGS_FLEET_RUNTIME',
    description: 'host agent runtime',
    default: 'process',
    choices: ['process', 'docker'],
  },
  demoTenant: { type: 'string', flag: '--demo-tenant', env: 'PGS_FLEET_DEMO_TENANT', description: "tenant created on start ('' for none)", default: 'demo' },
  insecure: {
    type: 'bool',
    flag: '--insecure',
    env: 'PGS_FLEET_INSECURE',
    description: 'run every gRPC link in plaintext without certificates (operators still need the admin token)',
    default: false,
  },
  startTimeout: {
    type: 'duration',
    flag: '--start-timeout',
    env: 'PGS_FLEET_START_TIMEOUT',
    description: 'how long each start step may take',
    default: 120_000,
    min: 1000,
  },
} as const;

/** The launcher's validated options. */
export type FleetOptions = ConfigOf<typeof FLEET_OPTIONS>;

/** The commands the launcher knows. */
export const COMMANDS = ['up', 'down', 'reset', 'status'] as const;

/** One of COMMANDS. */
export type FleetCommand = (typeof COMMANDS)[number];

const USAGE = `pgs local fleet: a coordinator, three host agents and two routers on this machine

Usage: node tools/local-fleet/dist/main.js <command> [options]

Commands:
  up      build state on first start (CA, certificates), start everything, create the demo tenant,
          print how to connect; Ctrl-C stops it all (routers, agents, tenant instances, coordinator)
  down    stop a fleet started by \`up\` (e.g. from another terminal)
  reset   down, then delete the state directory (tenants, data, certificates)
  status  show whether the fleet runs, and its addresses`;

/** Parses argv (without node and script) into a command and options; `help` when asked for. */
export function parseArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { kind: 'help'; text: string } | { kind: 'run'; command: FleetCommand; options: FleetOptions } {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const result = loadConfig(FLEET_OPTIONS, ['--help'], env, USAGE);
    return { kind: 'help', text: result.kind === 'help' ? result.text : USAGE };
  }
  const command = COMMANDS.find((c) => c === first);
  if (command === undefined) throw new ConfigError(`unknown command ${JSON.stringify(first)}: use one of ${COMMANDS.join(', ')}`);
  const result = loadConfig(FLEET_OPTIONS, rest, env, USAGE);
  if (result.kind === 'help') return result;
  const options = result.config;
  if (options.hostAddresses.length === 0) throw new ConfigError('--host-addresses needs at least one address');
  for (const address of options.hostAddresses) {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address))
      throw new ConfigError(`--host-addresses: ${address} is not a loopback address (127.x.y.z); the local fleet listens on loopback only`);
  }
  if (!/^\d+-\d+$/.test(options.instancePorts)) throw new ConfigError(`--instance-ports: ${options.instancePorts} is not a range like 20000-20999`);
  return { kind: 'run', command, options: { ...options, stateDir: path.resolve(options.stateDir) } };
}
