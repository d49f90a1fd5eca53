import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findPostgresBinDir, postgresOsUser } from './postgres-binaries.js';
import { chownTo, launchPostgres, type TestPostgres } from './postgres-process.js';

export type { TestPostgres } from './postgres-process.js';

/** Options for startTestPostgres. */
export interface TestPostgresOptions {
  /** Listen address, default 127.0.0.1. */
  host?: string;
  port?: number;
  /** Login roles to create with SCRAM passwords; each also gets a database of the same name (a replication role gets none). */
  users?: ReadonlyArray<{ name: string; password: string; database?: string; replication?: boolean }>;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string>;
  /** Extra pg_hba.conf lines (after the one that lets every role in over TCP from host with SCRAM). */
  hba?: readonly string[];
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
  for (const dir of [root, dataDir, socketDir]) chownTo(dir, owner);
  const spawnIds = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync', '-N'],
    { ...spawnIds, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const hba = [`host all all ${host}/32 scram-sha-256`, ...(options.hba ?? [])];
  fs.appendFileSync(path.join(dataDir, 'pg_hba.conf'), `\n${hba.join('\n')}\n`);
  const server = await launchPostgres({ bin, owner, root, dataDir, socketDir, host, port, settings: options.settings ?? {} });
  try {
    const admin = await server.adminClient();
    try {
      for (const u of options.users ?? []) {
        const ident = `"${u.name.replaceAll('"', '""')}"`;
        await admin.query(`CREATE ROLE ${ident} LOGIN${u.replication ? ' REPLICATION' : ''} PASSWORD '${u.password.replaceAll("'", "''")}'`);
        if (u.replication) continue;
        await admin.query(`CREATE DATABASE "${(u.database ?? u.name).replaceAll('"', '""')}" OWNER ${ident}`);
      }
    } finally {
      await admin.end();
    }
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
