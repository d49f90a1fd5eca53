import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findPostgresBinDir, postgresOsUser } from './postgres-binaries.js';

/** A throwaway PostgreSQL server for tests: real binaries, its own data dir, port and socket. */
export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly pid: number;
  /** Superuser over the unix socket (trust), for setup. */
  adminClient(database?: string): Promise<pg.Client>;
  /** A connection string for a role created with `users`. */
  url(user: string, password: string, database?: string): string;
  stop(): Promise<void>;
}

/** Options for startTestPostgres. */
export interface TestPostgresOptions {
  /** Listen address, default 127.0.0.1. */
  host?: string;
  port?: number;
  /** Login roles to create with SCRAM passwords; each also gets a database of the same name. */
  users?: ReadonlyArray<{ name: string; password: string; database?: string }>;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string>;
  /** Server binaries to run (another major's bin dir); default findPostgresBinDir(). */
  binDir?: string;
}

/** Picks a free TCP port on host by binding port 0. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function chownTree(dir: string, owner: { uid: number; gid: number } | undefined): void {
  if (!owner) return;
  fs.chownSync(dir, owner.uid, owner.gid);
}

async function waitReady(socketDir: string, port: number, child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      lastError = err;
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`postgres not ready after ${timeoutMs} ms: ${String(lastError)}`);
}

/** Starts a PostgreSQL server (initdb + postgres as the unprivileged OS user when root). */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = options.binDir ?? findPostgresBinDir();
  const owner = postgresOsUser();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-testpg-'));
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'data');
  const socketDir = path.join(root, 'sock');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.mkdirSync(socketDir, { mode: 0o700 });
  chownTree(root, owner);
  chownTree(dataDir, owner);
  chownTree(socketDir, owner);
  const spawnIds = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync', '-N'], { ...spawnIds, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  fs.appendFileSync(path.join(dataDir, 'pg_hba.conf'), `\nhost all all ${host}/32 scram-sha-256\n`);
  const logFile = path.join(root, 'postgres.log');
  const logFd = fs.openSync(logFile, 'a');
  chownTree(logFile, owner);
  const settings: Record<string, string> = { listen_addresses: host, port: String(port), unix_socket_directories: socketDir, fsync: 'off', max_connections: '100', shared_buffers: '16MB', ...options.settings };
  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(path.join(bin, 'postgres'), args, { ...spawnIds, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  await waitReady(socketDir, port, child, logFile);
  const adminClient = async (database = 'postgres'): Promise<pg.Client> => {
    const c = new pg.Client({ host: socketDir, port, user: 'postgres', database });
    await c.connect();
    return c;
  };
  const admin = await adminClient();
  try {
    for (const u of options.users ?? []) {
      const ident = `"${u.name.replaceAll('"', '""')}"`;
      await admin.query(`CREATE ROLE ${ident} LOGIN PASSWORD '${u.password.replaceAll("'", "''")}'`);
      await admin.query(`CREATE DATABASE "${(u.database ?? u.name).replaceAll('"', '""')}" OWNER ${ident}`);
    }
  } finally {
    await admin.end();
  }
  let stopped: Promise<void> | undefined;
  return {
    host, port, dataDir, socketDir, pid: child.pid ?? 0,
    adminClient,
    url: (user, password, database = user) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          fs.rmSync(root, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGINT'); // fast shutdown
      })),
  };
}
