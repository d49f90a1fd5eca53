import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findPostgresBinDir, postgresOsUser } from './postgres-binaries.js';
import { chownTo, launchPostgres, type TestPostgres } from './postgres-process.js';
import { freePort, startTestPostgres, type TestPostgresOptions } from './test-postgres.js';

/** The standby's application_name, which the primary's synchronous_standby_names names. */
export const STANDBY_NAME = 'pgs_standby';
const REPLICATOR = 'pgs_replicator';

/**
 * A PostgreSQL primary with a synchronous streaming standby, made the usual way (pg_basebackup,
 * a physical slot, synchronous_standby_names): a commit is acknowledged only once the standby has
 * flushed it, so promoting the standby after the primary dies loses no acknowledged transaction.
 */
export interface TestPostgresPair {
  /** The server that takes writes now (the standby after promoteStandby). */
  readonly primary: TestPostgres;
  /** The other one; after promoteStandby it is the old primary (stopped or killed by then, or still running). */
  readonly standby: TestPostgres;
  /** Both servers as host:port, the first primary first, for clients that find the writable one themselves. */
  readonly hosts: readonly string[];
  /** A connection string naming both servers (`postgres://u:p@h1:p1,h2:p2/db`), as libpq's multi-host form. */
  url(user: string, password: string, database?: string): string;
  /** Promotes the standby (pg_promote, waiting for it) and swaps the roles; the old primary is left as it is. */
  promoteStandby(): Promise<void>;
  stop(): Promise<void>;
}

/** Options for startTestPostgresPair: the primary's options plus the standby's listen address. */
export interface TestPostgresPairOptions extends Omit<TestPostgresOptions, 'hba'> {
  standbyHost?: string;
  /** false = an asynchronous standby (commits do not wait for it). Default true. */
  synchronous?: boolean;
}

function run(cmd: string, args: readonly string[], env: Record<string, string>, owner: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...(owner ?? {}), env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} exited with ${code}: ${stderr.trim()}`))));
  });
}

async function waitSynchronous(primary: TestPostgres, timeoutMs = 30_000): Promise<void> {
  const admin = await primary.adminClient();
  try {
    const deadline = Date.now() + timeoutMs;
    let state = 'absent';
    while (Date.now() < deadline) {
      const r = await admin.query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication WHERE application_name = $1', [STANDBY_NAME]);
      state = r.rows[0]?.sync_state ?? 'absent';
      if (state === 'sync') return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`the standby is not synchronous after ${timeoutMs} ms (pg_stat_replication sync_state: ${state})`);
  } finally {
    await admin.end();
  }
}

/** Starts a primary, clones it with pg_basebackup into a hot standby and makes that standby synchronous. */
export async function startTestPostgresPair(options: TestPostgresPairOptions = {}): Promise<TestPostgresPair> {
  const bin = findPostgresBinDir();
  const owner = postgresOsUser();
  const host = options.host ?? '127.0.0.1';
  const standbyHost = options.standbyHost ?? host;
  const replicatorPassword = randomBytes(12).toString('hex');
  // The standby connects from a loopback address the kernel picks, so the whole loopback net may replicate.
  const first = await startTestPostgres({
    ...options,
    host,
    users: [...(options.users ?? []), { name: REPLICATOR, password: replicatorPassword, replication: true }],
    settings: { wal_level: 'replica', max_wal_senders: '5', max_replication_slots: '5', hot_standby: 'on', wal_keep_size: '64MB', ...options.settings },
    hba: [`host replication ${REPLICATOR} 127.0.0.0/8 scram-sha-256`],
  });
  let second: TestPostgres | undefined;
  try {
    const admin = await first.adminClient();
    try {
      await admin.query('SELECT pg_create_physical_replication_slot($1)', [STANDBY_NAME]);
    } finally {
      await admin.end();
    }
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-testpg-standby-'));
    fs.chmodSync(root, 0o755);
    const dataDir = path.join(root, 'data');
    const socketDir = path.join(root, 'sock');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.mkdirSync(socketDir, { mode: 0o700 });
    for (const dir of [root, dataDir, socketDir]) chownTo(dir, owner);
    await run(
      path.join(bin, 'pg_basebackup'),
      ['-D', dataDir, '-h', first.host, '-p', String(first.port), '-U', REPLICATOR, '-X', 'stream', '-c', 'fast', '--no-sync', '-S', STANDBY_NAME],
      { PGPASSWORD: replicatorPassword },
      owner,
    );
    const signal = path.join(dataDir, 'standby.signal');
    fs.writeFileSync(signal, '');
    chownTo(signal, owner);
    const conninfo = `host=${first.host} port=${first.port} user=${REPLICATOR} password=${replicatorPassword} application_name=${STANDBY_NAME}`;
    const port = await freePort(standbyHost);
    second = await launchPostgres({
      bin,
      owner,
      root,
      dataDir,
      socketDir,
      host: standbyHost,
      port,
      settings: {
        wal_level: 'replica',
        hot_standby: 'on',
        max_wal_senders: '5',
        max_replication_slots: '5',
        ...options.settings,
        primary_conninfo: conninfo,
        primary_slot_name: STANDBY_NAME,
      },
    });
    if (options.synchronous ?? true) {
      // ALTER SYSTEM, not a command-line setting: a -c setting would outrank it and could not be changed at run time.
      const a = await first.adminClient();
      try {
        await a.query(`ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`);
        await a.query('SELECT pg_reload_conf()');
      } finally {
        await a.end();
      }
      await waitSynchronous(first);
    }
  } catch (err) {
    await second?.stop();
    await first.stop();
    throw err;
  }
  let primary = first;
  let standby = second;
  const hosts = [`${first.host}:${first.port}`, `${second.host}:${second.port}`];
  return {
    get primary() {
      return primary;
    },
    get standby() {
      return standby;
    },
    hosts,
    url: (user, password, database = user) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hosts.join(',')}/${encodeURIComponent(database)}`,
    promoteStandby: async () => {
      const admin = await standby.adminClient();
      try {
        const r = await admin.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
        if (!r.rows[0]?.ok) throw new Error('pg_promote did not finish within 60 s');
      } finally {
        await admin.end();
      }
      [primary, standby] = [standby, primary];
    },
    stop: async () => {
      await Promise.all([primary.stop(), standby.stop()]);
    },
  };
}
