/**
 * Where everything of a local fleet lives under its state dir: coordinator data, the agents'
 * data roots, router caches, certificates, one log and one pid file per process, fleet.json.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One host agent of the fleet. */
export interface HostPlan {
  id: string;
  address: string;
  zone: string;
  dataRoot: string;
}

/** Paths of a fleet's state. */
export interface FleetLayout {
  stateDir: string;
  coordinatorData: string;
  certsDir: string;
  caCert: string;
  caKey: string;
  routerCert: string;
  routerKey: string;
  logsDir: string;
  pidsDir: string;
  routerCache: (id: string) => string;
  log: (name: string) => string;
  pidFile: (name: string) => string;
  fleetFile: string;
  demoPasswordFile: string;
  cancelSecretFile: string;
  /** Where the agents' data roots are (see agentsBase). */
  agentsDir: string;
  /**
   * The fleet's posix backup repository. pgBackRest runs as the postgres OS user, so it sits where
   * that user can reach: beside the agents' data roots (`.pgs/local/backups` when the state dir is
   * reachable by others).
   */
  backupsDir: string;
  /**
   * The coordinators' PostgreSQL store when the fleet runs several coordinators (primary and
   * standby data dirs, sockets). The postgres OS user runs it, so it sits beside the agents' data roots.
   */
  storeDir: string;
  /** The data dir of coordinator `i` (0-based): coordinator/, coordinator-2/, ... */
  coordinatorDataAt: (i: number) => string;
}

/** True when every directory from `dir` up to / can be entered by other users (o+x). */
function traversableByOthers(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let mode: number;
    try {
      mode = fs.statSync(d).mode;
    } catch (err) {
      // Not created yet: its parent decides.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (path.dirname(d) === d) return true;
        continue;
      }
      throw err;
    }
    if ((mode & 0o001) === 0) return false;
    if (path.dirname(d) === d) return true;
  }
}

/**
 * The agents' data roots must be reachable by the unprivileged user postgres runs as. A repo
 * under /root (mode 0700) is not, so then they go to /var/tmp/pgs-local-<hash of the state dir>.
 */
function agentsBase(stateDir: string): string {
  return path.join(sharedBase(stateDir), 'agents');
}

/** The state dir when the postgres OS user can traverse it, else /var/tmp/pgs-local-<hash of the state dir>. */
function sharedBase(stateDir: string): string {
  if (traversableByOthers(stateDir)) return stateDir;
  const hash = crypto.createHash('sha256').update(stateDir).digest('hex').slice(0, 12);
  return path.join(os.tmpdir() === '/tmp' ? '/var/tmp' : os.tmpdir(), `pgs-local-${hash}`);
}

/** The layout of the fleet kept in `stateDir`. */
export function fleetLayout(stateDir: string): FleetLayout {
  const certsDir = path.join(stateDir, 'certs');
  const logsDir = path.join(stateDir, 'logs');
  const pidsDir = path.join(stateDir, 'pids');
  return {
    stateDir,
    coordinatorData: path.join(stateDir, 'coordinator'),
    certsDir,
    // ca.crt sits at the top of the state dir: it is the file people pass as sslrootcert.
    caCert: path.join(stateDir, 'ca.crt'),
    caKey: path.join(certsDir, 'ca.key'),
    routerCert: path.join(certsDir, 'router.crt'),
    routerKey: path.join(certsDir, 'router.key'),
    logsDir,
    pidsDir,
    routerCache: (id) => path.join(stateDir, 'routers', id, 'routes.db'),
    log: (name) => path.join(logsDir, `${name}.log`),
    pidFile: (name) => path.join(pidsDir, `${name}.pid`),
    fleetFile: path.join(stateDir, 'fleet.json'),
    demoPasswordFile: path.join(stateDir, 'demo-password'),
    cancelSecretFile: path.join(certsDir, 'cancel-secret'),
    agentsDir: agentsBase(stateDir),
    backupsDir: path.join(sharedBase(stateDir), 'backups'),
    storeDir: path.join(sharedBase(stateDir), 'store'),
    coordinatorDataAt: (i) => path.join(stateDir, i === 0 ? 'coordinator' : `coordinator-${i + 1}`),
  };
}

/** The hosts h1, h2, ... on the given addresses, in zones a, b, c, ... */
export function hostPlans(layout: FleetLayout, addresses: readonly string[]): HostPlan[] {
  return addresses.map((address, i) => ({
    id: `h${i + 1}`,
    address,
    zone: String.fromCharCode('a'.charCodeAt(0) + (i % 26)),
    dataRoot: path.join(layout.agentsDir, `h${i + 1}`),
  }));
}

/** Makes the directories of a layout (0700 where secrets live). */
export function createDirectories(layout: FleetLayout): void {
  fs.mkdirSync(layout.stateDir, { recursive: true });
  fs.mkdirSync(layout.coordinatorData, { recursive: true, mode: 0o700 });
  fs.mkdirSync(layout.certsDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(layout.logsDir, { recursive: true });
  fs.mkdirSync(layout.pidsDir, { recursive: true });
  fs.mkdirSync(layout.agentsDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(layout.backupsDir), { recursive: true, mode: 0o755 });
}
