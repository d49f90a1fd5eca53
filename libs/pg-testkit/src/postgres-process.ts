import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/** A postgres server process started from a data directory we prepared. */
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
  /** Fast shutdown (SIGINT), then removes the server's files. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or a lost machine would; the files stay until stop(). */
  kill(): Promise<void>;
}

/** Where and how to run one server; its root directory holds the data dir, socket dir and log. */
export interface PostgresLaunch {
  bin: string;
  owner: { uid: number; gid: number } | undefined;
  root: string;
  dataDir: string;
  socketDir: string;
  host: string;
  port: number;
  settings: Record<string, string>;
}

/** Changes one path's owner to the unprivileged OS user postgres runs as (when we are root). */
export function chownTo(file: string, owner: { uid: number; gid: number } | undefined): void {
  if (!owner) return;
  fs.chownSync(file, owner.uid, owner.gid);
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

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

/** Starts postgres on a prepared data directory and waits until it takes connections. */
export async function launchPostgres(launch: PostgresLaunch): Promise<TestPostgres> {
  const { bin, owner, root, dataDir, socketDir, host, port } = launch;
  const logFile = path.join(root, 'postgres.log');
  const logFd = fs.openSync(logFile, 'a');
  chownTo(logFile, owner);
  const settings: Record<string, string> = {
    listen_addresses: host,
    port: String(port),
    unix_socket_directories: socketDir,
    fsync: 'off',
    max_connections: '100',
    shared_buffers: '16MB',
    ...launch.settings,
  };
  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const spawnIds = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const child = spawn(path.join(bin, 'postgres'), args, { ...spawnIds, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  try {
    await waitReady(socketDir, port, child, logFile);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const adminClient = async (database = 'postgres'): Promise<pg.Client> => {
    const c = new pg.Client({ host: socketDir, port, user: 'postgres', database });
    await c.connect();
    return c;
  };
  let stopped: Promise<void> | undefined;
  return {
    host,
    port,
    dataDir,
    socketDir,
    pid: child.pid ?? 0,
    adminClient,
    url: (user, password, database = user) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await waitExit(child);
    },
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.kill('SIGINT'); // fast shutdown
          await waitExit(child);
          clearTimeout(kill);
        }
        fs.rmSync(root, { recursive: true, force: true });
      })()),
  };
}
