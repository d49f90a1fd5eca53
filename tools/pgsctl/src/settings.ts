/**
 * Where pgsctl finds the coordinator (and the router edge for `connect`), in order:
 * the --coordinator flag, PGS_COORDINATOR, the user's config file (~/.config/pgs/config.json),
 * the local fleet's description (.pgs/local/fleet.json, from the working directory upwards),
 * then the local default 127.0.0.1:7400.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.js';

/** The coordinator address every other default falls back to. */
export const DEFAULT_COORDINATOR = '127.0.0.1:7400';
/** The router edge address `connect` falls back to. */
export const DEFAULT_ROUTER = '127.0.0.1:5432';

/** What pgsctl reads from ~/.config/pgs/config.json. */
export interface UserConfig {
  coordinator?: string;
  router?: string;
  /** Operator token, or a file holding it (mode 0600 advised). */
  token?: string;
  tokenFile?: string;
  /** CA file the coordinator's certificate is checked against. */
  ca?: string;
}

/** The part of the local fleet's fleet.json that pgsctl uses. */
export interface LocalFleet {
  file: string;
  coordinator: string;
  routers: string[];
  caPath?: string;
  sniDomain?: string;
  /** The coordinator's fleet CA (its TLS), the admin token file, or plaintext. */
  coordinatorCa?: string;
  tokenFile?: string;
  insecure?: boolean;
}

/** The environment pgsctl resolves settings in (injected so tests need no real home dir). */
export interface SettingsEnv {
  env: NodeJS.ProcessEnv;
  cwd: string;
  home: string;
}

/** A resolved address and where it came from (shown in error hints and `pgsctl config`). */
export interface Resolved {
  address: string;
  source: string;
}

/** The path of the user's config file: $XDG_CONFIG_HOME/pgs/config.json or ~/.config/pgs/config.json. */
export function userConfigPath(where: SettingsEnv): string {
  const base = where.env.XDG_CONFIG_HOME || path.join(where.home, '.config');
  return path.join(base, 'pgs', 'config.json');
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix or remove the file', cause: err });
  }
}

function optionalString(value: unknown, file: string, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new UsageError(`${file}: "${key}" must be a non-empty string like "host:port"`);
  return value;
}

/** Reads the user's config file; undefined when there is none. */
export function readUserConfig(where: SettingsEnv): UserConfig | undefined {
  const file = userConfigPath(where);
  const data = readJson(file);
  if (data === undefined) return undefined;
  if (typeof data !== 'object' || data === null) throw new UsageError(`${file} must hold a JSON object like {"coordinator": "host:port"}`);
  const record = data as Record<string, unknown>;
  return {
    coordinator: optionalString(record.coordinator, file, 'coordinator'),
    router: optionalString(record.router, file, 'router'),
    token: optionalString(record.token, file, 'token'),
    tokenFile: optionalString(record.tokenFile, file, 'tokenFile'),
    ca: optionalString(record.ca, file, 'ca'),
  };
}

/** Finds .pgs/local/fleet.json in cwd or a parent directory; undefined when there is none. */
export function findLocalFleet(cwd: string): LocalFleet | undefined {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const file = path.join(dir, '.pgs', 'local', 'fleet.json');
    const data = readJson(file) as Record<string, unknown> | undefined;
    if (data !== undefined) {
      const section = data.coordinator as Record<string, unknown> | undefined;
      const coordinator = optionalString(section?.grpc, file, 'coordinator.grpc');
      if (coordinator === undefined) throw new UsageError(`${file} has no coordinator.grpc address`, { hint: 'restart the local fleet with `npm start`' });
      const routers = Array.isArray(data.routers) ? data.routers.flatMap((r) => (typeof r?.listen === 'string' ? [r.listen as string] : [])) : [];
      return {
        file,
        coordinator,
        routers,
        caPath: typeof data.caPath === 'string' ? data.caPath : undefined,
        sniDomain: typeof data.sniDomain === 'string' ? data.sniDomain : undefined,
        coordinatorCa: optionalString(section?.caFile, file, 'coordinator.caFile'),
        tokenFile: optionalString(section?.tokenFile, file, 'coordinator.tokenFile'),
        insecure: section?.insecure === true,
      };
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Checks host:port, so a typo fails here with a clear message rather than as a connection error. */
export function checkAddress(address: string, what: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new UsageError(`invalid ${what} address ${JSON.stringify(address)}: expected host:port, e.g. 127.0.0.1:7400`);
  }
  return address;
}

/** Checks a comma-separated list of host:port (several coordinators: pgsctl finds the leader). */
export function checkAddresses(list: string, what: string): string {
  const each = list.split(',').map((a) => a.trim());
  if (each.some((a) => a === '')) throw new UsageError(`invalid ${what} address list ${JSON.stringify(list)}: expected host:port[,host:port...]`);
  return each.map((a) => checkAddress(a, what)).join(',');
}

/** Resolves the coordinator's gRPC address (or the comma-separated addresses of several). */
export function resolveCoordinator(flag: string | undefined, where: SettingsEnv): Resolved {
  if (flag) return { address: checkAddresses(flag, 'coordinator'), source: '--coordinator' };
  const env = where.env.PGS_COORDINATOR;
  if (env) return { address: checkAddresses(env, 'coordinator'), source: 'PGS_COORDINATOR' };
  const config = readUserConfig(where);
  if (config?.coordinator) return { address: checkAddresses(config.coordinator, 'coordinator'), source: userConfigPath(where) };
  const fleet = findLocalFleet(where.cwd);
  if (fleet) return { address: checkAddresses(fleet.coordinator, 'coordinator'), source: fleet.file };
  return { address: DEFAULT_COORDINATOR, source: 'default' };
}

/** Resolves the router edge address `connect` prints: flag, PGS_ROUTER, config file, local fleet, default. */
export function resolveRouter(flag: string | undefined, where: SettingsEnv): Resolved & { fleet?: LocalFleet } {
  if (flag) return { address: checkAddress(flag, 'router'), source: '--router' };
  const env = where.env.PGS_ROUTER;
  if (env) return { address: checkAddress(env, 'router'), source: 'PGS_ROUTER' };
  const config = readUserConfig(where);
  if (config?.router) return { address: checkAddress(config.router, 'router'), source: userConfigPath(where) };
  const fleet = findLocalFleet(where.cwd);
  const first = fleet?.routers[0];
  if (fleet && first) return { address: checkAddress(first, 'router'), source: fleet.file, fleet };
  return { address: DEFAULT_ROUTER, source: 'default' };
}

/** The real environment of this process. */
export function processSettingsEnv(): SettingsEnv {
  return { env: process.env, cwd: process.cwd(), home: os.homedir() };
}
