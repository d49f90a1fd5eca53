// The proxies the router is measured against, from Debian packages: HAProxy in TCP mode (the floor
// of a byte pipe) and PgBouncer configured as the router's pooled modes are. Used by
// router-bench.ts and router-cost.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, postgresOsUser, type TestPostgres } from '@pgs/pg-testkit';
import { start, TENANT, USER, verifierOf, waitForPort } from './router-fleet.js';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** haproxy lives in /usr/sbin, pgbouncer in /usr/sbin on Debian. */
function findBinary(name: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return have(name) ? name : undefined;
}

/** Installs haproxy and pgbouncer with apt-get when missing (their system services stopped). */
export function ensurePackages(): void {
  const missing = ['haproxy', 'pgbouncer'].filter((p) => !findBinary(p));
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(', ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed; install them and rerun`);
  // The packages start system services; we run our own instances on our own ports.
  for (const svc of missing) spawnSync('sh', ['-c', `service ${svc} stop >/dev/null 2>&1 || true`]);
}

/** HAProxy in TCP mode in front of the instance. */
export async function startHaproxy(pg: TestPostgres, dir: string): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4096',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      'listen pg',
      `  bind 127.0.0.1:${port}`,
      `  server pg1 ${pg.host}:${pg.port}`,
      '',
    ].join('\n'),
  );
  const child = start(findBinary('haproxy')!, ['-f', cfg, '-db'], path.join(dir, 'haproxy.log'));
  await waitForPort(port);
  return { port, pid: child.pid! };
}

/**
 * PgBouncer configured as the router's pooled modes are: SCRAM-SHA-256 against the verifier in its
 * auth_file (no password anywhere), so it logs into the instance with the client's SCRAM keys.
 * `maxClients`: its max_client_conn.
 */
export async function startPgbouncer(
  pg: TestPostgres,
  dir: string,
  name: string,
  mode: 'session' | 'transaction',
  poolSize: number,
  maxClients = 2000,
): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const owner = postgresOsUser();
  const cfg = path.join(dir, `${name}.ini`);
  const users = path.join(dir, `${name}-userlist.txt`);
  fs.writeFileSync(users, `"${USER}" "${await verifierOf(pg, USER)}"\n`);
  fs.writeFileSync(
    cfg,
    [
      '[databases]',
      `${TENANT} = host=${pg.host} port=${pg.port} dbname=${TENANT}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${users}`,
      `pool_mode = ${mode}`,
      'server_tls_sslmode = disable',
      `max_client_conn = ${maxClients}`,
      `default_pool_size = ${poolSize}`,
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  const log = path.join(dir, `${name}.log`);
  fs.writeFileSync(log, '');
  if (owner) for (const f of [dir, cfg, users, log]) fs.chownSync(f, owner.uid, owner.gid);
  // PgBouncer refuses to run as root.
  const child = start(findBinary('pgbouncer')!, [cfg], log, owner ? { uid: owner.uid, gid: owner.gid } : {});
  await waitForPort(port);
  return { port, pid: child.pid! };
}
