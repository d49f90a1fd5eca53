/** Backup and restore steps the scenarios share, through pgsctl as an operator would run them. */
import { expect } from 'vitest';
import type { Fleet } from './fleet.js';
import { queryOnce, type Login } from './pg-clients.js';
import { waitUntil } from './poll.js';
import { ownerLogin } from './tenant-probes.js';
import { tenantName } from './use-fleet.js';
import type { BackupJson, BackupListJson, RestoreJson, RestoreResultJson } from './views.js';

export async function backupList(f: Fleet, id: string): Promise<BackupListJson> {
  return f.pgsctlJson<BackupListJson>(['backup', 'list', id]);
}

/** Waits until the tenant has a restorable backup (the first one is taken as soon as it runs). */
export async function firstBackup(f: Fleet, id: string): Promise<BackupJson> {
  const list = await waitUntil(
    `a restorable backup of ${id}`,
    () => backupList(f, id),
    (l) => l.backups.some((b) => b.status === 'SUCCEEDED'),
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  const done = list.backups.find((b) => b.status === 'SUCCEEDED');
  if (!done) throw new Error(`no restorable backup of ${id}`);
  return done;
}

/** Waits until the tenant's WAL up to `t` is in the repository (the window reaches past `t`). */
export async function archivedPast(f: Fleet, id: string, t: Date, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    `archive of ${id} past ${t.toISOString()}`,
    () => backupList(f, id),
    (l) => typeof l.window?.latest === 'string' && new Date(l.window.latest) > t,
    { timeoutMs, intervalMs: 500 },
  );
}

function firstRouter(f: Fleet): Fleet['routers'][number] {
  const router = f.routers[0];
  if (!router) throw new Error('router expected');
  return router;
}

/** The server's clock right after the last commit. */
export async function serverNow(f: Fleet, login: Login): Promise<Date> {
  const [row] = await queryOnce<{ now: Date }>(firstRouter(f).endpoint, login, 'select clock_timestamp() as now');
  if (!row) throw new Error('no clock');
  return row.now;
}

/** Inserts ids from..to into table `rows` in one statement. */
export async function insertRange(f: Fleet, login: Login, from: number, to: number): Promise<void> {
  await queryOnce(firstRouter(f).endpoint, login, 'insert into rows (id) select generate_series($1::int, $2::int)', [from, to]);
}

/** Every id in table `rows`, in order. */
export async function idsOf(f: Fleet, login: Login): Promise<number[]> {
  const rows = await queryOnce<{ id: number }>(firstRouter(f).endpoint, login, 'select id from rows order by id');
  return rows.map((r) => r.id);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Restores `id` into a new tenant, enables access, and returns how its owner logs in there. */
export async function restoreAs(
  f: Fleet,
  id: string,
  password: string,
  target: readonly string[],
): Promise<{ copy: string; login: Login; restore: RestoreJson }> {
  const copy = tenantName('copy');
  const { restore } = await f.pgsctlJson<RestoreResultJson>(['tenant', 'restore', id, ...target, '--as', copy, '--wait']);
  expect(restore.state).toBe('SUCCEEDED');
  await f.pgsctl(['tenant', 'access', 'enable', copy]);
  // The owner keeps its name and its password in the copy: `<owner>.<copy>` logs in.
  const login: Login = { user: `${id}.${copy}`, password, database: id };
  await f.waitServing(login, 30_000);
  return { copy, login, restore };
}

/** A tenant ready for backup scenarios: how its owner logs in and where. */
export interface BackedUpTenant {
  id: string;
  password: string;
  login: Login;
  router: Fleet['routers'][number];
  /** Runs SQL as the owner through the router. */
  sql(text: string): Promise<unknown[]>;
}

/**
 * Creates a tenant with access on and a 2 s archive_timeout (a committed row reaches the repository
 * within seconds), waits for its first backup, and creates `table` (default: `rows (id int primary key)`).
 */
export async function backedUpTenant(
  f: Fleet,
  prefix: string,
  options: { replicas?: number; syncReplicas?: number; table?: string | null } = {},
): Promise<BackedUpTenant> {
  const id = tenantName(prefix);
  const password = `${prefix}-secret-12`;
  const login = ownerLogin(id, password);
  await f.createTenant(id, { password, access: true, replicas: options.replicas, syncReplicas: options.syncReplicas, extraArgs: ['--archive-timeout', '2s'] });
  await firstBackup(f, id);
  // A restore to a time needs a backup that stopped in an earlier whole second: the window opens
  // then. Writes the scenarios make (and the times they note) come after it.
  const opens = (await backupList(f, id)).window?.earliest;
  const wait = opens ? new Date(opens).getTime() + 100 - Date.now() : 0;
  if (wait > 0) await sleep(wait);
  const router = firstRouter(f);
  const sql = (text: string): Promise<unknown[]> => queryOnce(router.endpoint, login, text);
  const table = options.table === undefined ? 'create table rows (id int primary key)' : options.table;
  if (table !== null) await sql(table);
  return { id, password, login, router, sql };
}

/** A moment between two writes: the server's clock, with a little time on either side. */
export async function momentBetweenWrites(f: Fleet, login: Login): Promise<Date> {
  await sleep(300);
  const t = await serverNow(f, login);
  await sleep(300);
  return t;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
