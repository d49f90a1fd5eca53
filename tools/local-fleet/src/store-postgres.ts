/**
 * The coordinators' shared store when the fleet runs several of them: a PostgreSQL primary and a
 * synchronous standby streaming from it, both run by the launcher as the unprivileged `postgres`
 * OS user, their data kept across starts (`<shared base>/store/{primary,standby}`). A commit is
 * answered only once the standby flushed it, as an operator would run the coordinators' store.
 * The store password is made once (certs/store-password, 0600) and reaches the coordinators in
 * PGS_STORE (environment, never argv).
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { FleetLayout } from './layout.js';
import { writePidFile } from './pids.js';
import { waitUntil } from './readiness.js';

/** The role and database the coordinators use, and the role the standby streams as. */
const STORE_ROLE = 'pgs';
const REPLICATION_ROLE = 'pgs_replication';
/** The standby's name in synchronous_standby_names. */
const STANDBY_NAME = 'pgs_store_standby';

/** One store server the launcher runs. */
export interface StoreServer {
  name: 'store-primary' | 'store-standby';
  address: string;
  port: number;
  dataDir: string;
  pid: number;
  log: string;
}

/** Where the store's servers keep their data and sockets. */
export function storeDirs(layout: FleetLayout): { primary: string; standby: string; sockets: string } {
  return { primary: path.join(layout.storeDir, 'primary'), standby: path.join(layout.storeDir, 'standby'), sockets: path.join(layout.storeDir, 'sockets') };
}

/** The newest installed PostgreSQL server binaries (Debian layout), or PGS_PG_BIN_DIR. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PGS_PG_BIN_DIR) return env.PGS_PG_BIN_DIR;
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = majors.map((m) => path.join(root, m, 'bin')).find((bin) => fs.existsSync(path.join(bin, 'postgres')));
  if (!found)
    throw new Error('--coordinators > 1 runs a PostgreSQL store: no server binaries under /usr/lib/postgresql/*/bin; install postgresql or set PGS_PG_BIN_DIR');
  return found;
}

/** uid/gid of the `postgres` OS user when we are root (postgres refuses to run as root). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('the OS user postgres does not exist; create it (the store PostgreSQL refuses to run as root)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function own(dir: string, user: { uid: number; gid: number } | undefined): void {
  if (user) fs.chownSync(dir, user.uid, user.gid);
}

function run(bin: string, args: readonly string[], user: { uid: number; gid: number } | undefined, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(bin, args, { ...(user ?? {}), encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
}

/** The store password, made once (0600) beside the fleet's other secrets. */
export function storePassword(layout: FleetLayout): string {
  const file = path.join(layout.certsDir, 'store-password');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const password = crypto.randomBytes(24).toString('base64url');
  fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** The URL the coordinators get: both servers, the client takes the writable one. */
export function storeUrl(servers: readonly StoreServer[], password: string): string {
  return `postgres://${STORE_ROLE}:${encodeURIComponent(password)}@${servers.map((s) => `${s.address}:${s.port}`).join(',')}/${STORE_ROLE}`;
}

/** Starts postgres on `dataDir` in its own process group, log appended to `log`, pid file written. */
function launch(
  bin: string,
  user: { uid: number; gid: number } | undefined,
  server: Omit<StoreServer, 'pid'>,
  sockets: string,
  pidFile: string,
  settings: Record<string, string>,
): StoreServer {
  const fd = fs.openSync(server.log, 'a');
  const conf = { listen_addresses: server.address, port: String(server.port), unix_socket_directories: sockets, max_connections: '200', ...settings };
  const args = ['-D', server.dataDir, ...Object.entries(conf).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(path.join(bin, 'postgres'), args, { ...(user ?? {}), stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${server.name} (${bin}/postgres)`);
  child.unref();
  writePidFile(pidFile, child.pid);
  return { ...server, pid: child.pid };
}

async function accepts(sockets: string, port: number, database = 'postgres'): Promise<boolean> {
  const c = new pg.Client({ host: sockets, port, user: 'postgres', database, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Makes the store on first start (initdb, the roles and database, the standby cloned with
 * pg_basebackup), then starts both servers and waits until the primary answers and the standby
 * streams synchronously. `died` ends a wait early when the launcher is asked to stop.
 */
export async function startStore(
  layout: FleetLayout,
  o: { address: string; primaryPort: number; standbyPort: number; timeoutMs: number; say: (line: string) => void; died: () => Error | undefined },
): Promise<{ servers: StoreServer[]; url: string }> {
  const bin = postgresBinDir();
  const user = postgresUser();
  const dirs = storeDirs(layout);
  const password = storePassword(layout);
  fs.mkdirSync(layout.storeDir, { recursive: true, mode: 0o755 });
  for (const d of [layout.storeDir, dirs.sockets]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    own(d, user);
  }
  const fresh = !fs.existsSync(path.join(dirs.primary, 'PG_VERSION'));
  if (fresh) {
    o.say(`making the coordinators' PostgreSQL store in ${layout.storeDir} (initdb)`);
    fs.rmSync(dirs.primary, { recursive: true, force: true });
    fs.mkdirSync(dirs.primary, { mode: 0o700 });
    own(dirs.primary, user);
    run(path.join(bin, 'initdb'), ['-D', dirs.primary, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8'], user);
    fs.appendFileSync(
      path.join(dirs.primary, 'pg_hba.conf'),
      `\nhost all ${STORE_ROLE} ${o.address}/32 scram-sha-256\nhost replication ${REPLICATION_ROLE} ${o.address}/32 scram-sha-256\n`,
    );
  }
  const primaryLog = layout.log('store-primary');
  const primary = launch(
    bin,
    user,
    { name: 'store-primary', address: o.address, port: o.primaryPort, dataDir: dirs.primary, log: primaryLog },
    dirs.sockets,
    layout.pidFile('store-primary'),
    // synchronous_standby_names is not given here but kept by ALTER SYSTEM below: a setting on the
    // command line would override it, and on the first start no standby exists yet to wait for.
    {},
  );
  await waitUntil('store primary', o.timeoutMs, async () => ((await accepts(dirs.sockets, o.primaryPort)) ? true : undefined), o.died);
  if (fresh) {
    const admin = new pg.Client({ host: dirs.sockets, port: o.primaryPort, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const literal = `'${password.replaceAll("'", "''")}'`;
      await admin.query(`CREATE ROLE ${STORE_ROLE} LOGIN PASSWORD ${literal}`);
      await admin.query(`CREATE DATABASE ${STORE_ROLE} OWNER ${STORE_ROLE}`);
      await admin.query(`CREATE ROLE ${REPLICATION_ROLE} LOGIN REPLICATION PASSWORD ${literal}`);
    } finally {
      await admin.end();
    }
  }
  if (!fs.existsSync(path.join(dirs.standby, 'PG_VERSION'))) {
    o.say('cloning the store standby (pg_basebackup)');
    fs.rmSync(dirs.standby, { recursive: true, force: true });
    fs.mkdirSync(dirs.standby, { mode: 0o700 });
    own(dirs.standby, user);
    run(
      path.join(bin, 'pg_basebackup'),
      ['-D', dirs.standby, '-h', o.address, '-p', String(o.primaryPort), '-U', REPLICATION_ROLE, '-X', 'stream', '-c', 'fast', '--no-password'],
      user,
      { PGPASSWORD: password },
    );
    fs.writeFileSync(path.join(dirs.standby, 'standby.signal'), '');
    own(path.join(dirs.standby, 'standby.signal'), user);
  }
  // primary_conninfo on every start (the primary's port may differ from the last run's); the
  // password goes in a passfile only the postgres user reads, never in argv.
  const passfile = path.join(layout.storeDir, 'standby.pgpass');
  fs.writeFileSync(passfile, `${o.address}:*:replication:${REPLICATION_ROLE}:${password.replaceAll('\\', '\\\\').replaceAll(':', '\\:')}\n`, { mode: 0o600 });
  own(passfile, user);
  const conninfo = `host=${o.address} port=${o.primaryPort} user=${REPLICATION_ROLE} passfile=${passfile} application_name=${STANDBY_NAME}`;
  const standby = launch(
    bin,
    user,
    { name: 'store-standby', address: o.address, port: o.standbyPort, dataDir: dirs.standby, log: layout.log('store-standby') },
    dirs.sockets,
    layout.pidFile('store-standby'),
    { primary_conninfo: conninfo, hot_standby: 'on' },
  );
  await waitUntil('store standby', o.timeoutMs, async () => ((await accepts(dirs.sockets, o.standbyPort)) ? true : undefined), o.died);
  // Now that the standby streams, commits wait for it (a reload, no restart).
  const admin = new pg.Client({ host: dirs.sockets, port: o.primaryPort, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`);
    await admin.query('SELECT pg_reload_conf()');
    await waitUntil(
      'store standby streaming synchronously',
      o.timeoutMs,
      async () => {
        const r = await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_replication WHERE application_name = $1 AND sync_state = 'sync'", [
          STANDBY_NAME,
        ]);
        return Number(r.rows[0]?.n) > 0 ? true : undefined;
      },
      o.died,
    );
  } finally {
    await admin.end();
  }
  const servers = [primary, standby];
  return { servers, url: storeUrl(servers, password) };
}
