/**
 * fleet.json: the machine-readable description of a running local fleet, for pgsctl (which finds
 * it from the working directory upwards), scripts and tests. Written with mode 0600 because the
 * demo connection URIs carry the demo password.
 */
import fs from 'node:fs';

/** The demo tenant and how to reach it. */
export interface DemoDescription {
  tenant: string;
  user: string;
  database: string;
  passwordFile: string;
  /** postgresql://demo:<pw>@<router 1>/demo?sslmode=require */
  uri: string;
  /** One URI per router, in router order. */
  uris: string[];
  /** verify-full against the fleet CA, through router 1. */
  uriVerifyFull: string;
}

/** Everything a client of the local fleet needs. */
export interface FleetDescription {
  version: 1;
  /** 'starting' until every process is ready and the demo tenant ACTIVE, then 'ready'. */
  state: 'starting' | 'ready';
  stateDir: string;
  launcherPid: number;
  startedAt: string;
  /** caFile / tokenFile: the coordinator's fleet CA and the bootstrap admin token (pgsctl uses them); insecure: plaintext gRPC. */
  coordinator: { grpc: string; http: string; dataDir: string; pid: number; log: string; caFile: string; tokenFile: string; insecure: boolean };
  /** Every coordinator (one unless started with --coordinators N); coordinator.grpc lists all their addresses. */
  coordinators: Array<{ name: string; grpc: string; http: string; dataDir: string; pid: number; log: string }>;
  /** The coordinators' PostgreSQL store (primary, then its synchronous standby) when there are several; null for SQLite. */
  store: { kind: 'postgres'; servers: Array<{ name: string; address: string; port: number; dataDir: string; pid: number; log: string }> } | null;
  /** Index in `coordinators` of the one that led when the fleet became ready (null: none did then). */
  leader: number | null;
  hosts: Array<{ id: string; address: string; zone: string; dataRoot: string; ops: string; pid: number; log: string }>;
  routers: Array<{ id: string; listen: string; ops: string; cachePath: string; pid: number; log: string }>;
  caPath: string;
  sniDomain: string;
  /** The fleet's posix backup repository. */
  backupsDir: string;
  demo: DemoDescription | null;
}

/** Writes fleet.json atomically (rename), mode 0600. */
export function writeFleetFile(file: string, description: FleetDescription): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(description, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Reads fleet.json; undefined when there is none. */
export function readFleetFile(file: string): FleetDescription | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as FleetDescription;
}
