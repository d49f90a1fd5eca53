/**
 * The PostgreSQL client tools a standby is made with, run as the postgres OS user: pg_basebackup
 * (clone a primary over the network), pg_rewind (bring a former primary back onto the new primary's
 * timeline), pg_controldata (the last checkpoint of a stopped server). The replication password
 * only ever sits in a 0600 passfile owned by postgres: never on a command line, in the environment
 * of a logged command, or in a log line.
 * Docs: https://www.postgresql.org/docs/current/app-pgbasebackup.html, app-pgrewind.html,
 * libpq-pgpass.html, warm-standby.html.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentError, messageOf } from '../errors.js';
import type { OsUser } from './os-user.js';
import type { RuntimeReplication } from './runtime.js';

const run = promisify(execFile);

/** A libpq connection string value, quoted. */
function conninfoValue(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** A passfile field, escaped (libpq-pgpass: `\` and `:`). */
function passField(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
}

/**
 * How a standby (and pg_basebackup, pg_rewind) reaches its primary: `caFile` set = TLS checked with
 * verify-full against the fleet CA (the primary's certificate must name its host's address);
 * undefined = whatever the primary offers (prefer), for a fleet with inner TLS off.
 */
export interface ReplicationTls {
  caFile: string | undefined;
}

/** The connection string to the primary (no password: libpq reads it from `passFile`). */
export function primaryConninfo(r: RuntimeReplication, passFile: string, dbname?: string, tls?: ReplicationTls): string {
  const parts: [string, string][] = [
    ['host', r.primaryAddress],
    ['port', String(r.primaryPort)],
    ['user', r.user],
    ['application_name', r.standbyName],
    ['passfile', passFile],
    ['connect_timeout', '5'],
  ];
  if (dbname !== undefined) parts.push(['dbname', dbname]);
  if (tls?.caFile !== undefined) parts.push(['sslmode', 'verify-full'], ['sslrootcert', tls.caFile]);
  else if (tls) parts.push(['sslmode', 'prefer']);
  return parts.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

/** Writes the passfile for the replication role (mode 0600, owned by postgres); returns whether it changed. */
export function writePassFile(file: string, r: RuntimeReplication, owner: OsUser | undefined): boolean {
  // Any host, port and database: the file holds this one role's password and nothing else.
  const content = `*:*:*:${passField(r.user)}:${passField(r.password)}\n`;
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (current === content) return false;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  if (owner) fs.chownSync(tmp, owner.uid, owner.gid);
  fs.renameSync(tmp, file);
  return true;
}

/** Runs a tool as the postgres user; failures become AgentError with the tool's stderr (which holds no password). */
async function tool(
  binDir: string,
  name: string,
  args: readonly string[],
  runAs: OsUser | undefined,
  code: 'PRIMARY_NOT_READY' | 'REWIND_FAILED' | 'RUNTIME_ERROR',
  timeoutMs: number,
): Promise<string> {
  try {
    const { stdout, stderr } = await run(path.join(binDir, name), [...args], {
      uid: runAs?.uid,
      gid: runAs?.gid,
      env: { PATH: '/usr/bin:/bin', LANG: 'C', PGCONNECT_TIMEOUT: '5' },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
    });
    return `${stdout}${stderr}`;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new AgentError(code, `${name} failed: ${(stderr.trim() || messageOf(err)).slice(-1200)}`, { cause: err });
  }
}

/** How long a clone or a rewind may take before it is killed (large tenants take a while). */
const LONG_TOOL_MS = 60 * 60_000;

/**
 * Clones the primary into `dataDir` (empty, owned by postgres): WAL streamed alongside (-X stream)
 * through the replica's slot so the primary keeps what the new standby still needs, and a fast
 * checkpoint so the clone starts at once instead of at the next spread checkpoint.
 */
export async function baseBackup(o: {
  binDir: string;
  dataDir: string;
  replication: RuntimeReplication;
  passFile: string;
  runAs: OsUser | undefined;
  tls?: ReplicationTls;
}): Promise<void> {
  const r = o.replication;
  if (r.primaryAddress === '' || r.primaryPort === 0) throw new AgentError('PRIMARY_NOT_READY', 'the primary has no address yet (it is still being created)');
  const args = ['-D', o.dataDir, '-d', primaryConninfo(r, o.passFile, undefined, o.tls), '-X', 'stream', '-c', 'fast', '--no-password'];
  if (r.slot !== '') args.push('-S', r.slot);
  // A missing slot, a refused connection or a primary still starting all mean "not yet": retried.
  await tool(o.binDir, 'pg_basebackup', args, o.runAs, 'PRIMARY_NOT_READY', LONG_TOOL_MS);
}

/**
 * Rewinds a stopped former primary onto the source's timeline (pg_rewind runs crash recovery in
 * single-user mode first when the server was not shut down cleanly). Returns the tool's output.
 */
export async function rewind(o: {
  binDir: string;
  dataDir: string;
  replication: RuntimeReplication;
  passFile: string;
  runAs: OsUser | undefined;
  tls?: ReplicationTls;
}): Promise<string> {
  return tool(
    o.binDir,
    'pg_rewind',
    ['-D', o.dataDir, `--source-server=${primaryConninfo(o.replication, o.passFile, 'postgres', o.tls)}`],
    o.runAs,
    'REWIND_FAILED',
    LONG_TOOL_MS,
  );
}

/**
 * The source's newest timeline history file ('' when it is on its first timeline), read through the
 * functions the replication role is granted for pg_rewind (pg_ls_dir, pg_read_binary_file).
 */
export async function newestTimelineHistory(o: {
  binDir: string;
  replication: RuntimeReplication;
  passFile: string;
  runAs: OsUser | undefined;
  tls?: ReplicationTls;
}): Promise<string> {
  const sql =
    "select coalesce(convert_from(pg_read_binary_file('pg_wal/' || f, 0, 1048576, true), 'UTF8'), '') from " +
    "(select max(f) as f from pg_ls_dir('pg_wal', true, false) as f where f ~ '^[0-9A-F]{8}[.]history$') as h";
  const conninfo = primaryConninfo(o.replication, o.passFile, 'postgres', o.tls);
  return tool(o.binDir, 'psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql], o.runAs, 'PRIMARY_NOT_READY', 30_000);
}

/** pg_controldata of a data directory as name -> value. */
export async function controlData(o: { binDir: string; dataDir: string; runAs: OsUser | undefined }): Promise<Record<string, string>> {
  const out = await tool(o.binDir, 'pg_controldata', ['-D', o.dataDir], o.runAs, 'RUNTIME_ERROR', 30_000);
  const fields: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return fields;
}
