// Backup benchmark: pgBackRest under real agents with a posix repository (encrypted, lz4).
// 1. A tenant of at least 1 GiB (pgbench -i -s 70 through the router): a full base backup's MB/s.
// 2. Restoring it (latest) into a new tenant: request -> restore SUCCEEDED -> first query through
//    the router. Goal: under 60 s.
// 3. The data-loss window (RPO) under a continuous writer with archive_timeout 60 s and 10 s: at a
//    random moment every process of the tenant's instance is frozen (as if its disks were gone: no
//    more WAL leaves it), the tenant is restored (latest) elsewhere, and the RPO is the time between
//    the last acknowledged commit and the newest row the restore has. Goal: RPO <= archive_timeout + 1 s.
//
//   npm run bench:backup -w bench          (PGS_BENCH_SCALE=70, PGS_BENCH_RPO_RUNS=3)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { BackupStatus, BackupType, RestoreState, RunState, TenantStatus, type Backup, type Restore } from '@pgs/proto';
import { BackupPolicySchema } from '@pgs/proto';
import { poll, withFleet, type BenchFleet, type BenchRouter } from './fleet-launcher.js';
import { report, summarize, verdict } from './fleet-report.js';

const SCALE = Number(process.env.PGS_BENCH_SCALE ?? 70);
const RPO_RUNS = Number(process.env.PGS_BENCH_RPO_RUNS ?? 3);
const PASSWORD = 'backup-bench-secret';
const MiB = 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function seconds(from: bigint | undefined, to: bigint | undefined): number {
  return Number((to ?? 0n) - (from ?? 0n));
}

async function createTenant(fleet: BenchFleet, id: string, archiveTimeoutSeconds: number): Promise<void> {
  await fleet.client.createTenant({
    id,
    ownerPassword: PASSWORD,
    spec: {
      resources: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192 },
      nodes: 1,
      externalAccess: true,
      runState: RunState.RUNNING,
      backup: create(BackupPolicySchema, { archiveTimeoutSeconds }),
    },
  });
  await poll(`${id} ACTIVE`, async () => (await fleet.client.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 120_000, 200);
}

function client(router: BenchRouter, user: string, database: string): pg.Client {
  const c = new pg.Client({ host: router.host, port: router.port, user, database, password: PASSWORD, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  return c;
}

async function queryable(router: BenchRouter, user: string, database: string): Promise<boolean> {
  const c = client(router, user, database);
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.slice(-2000)}`))));
  });
}

/** Waits for a backup to end; throws when it failed. */
async function finishedBackup(fleet: BenchFleet, tenantId: string, backupId: string): Promise<Backup> {
  let last: Backup | undefined;
  await poll(
    `backup ${backupId}`,
    async () => {
      last = (await fleet.client.getBackup({ tenantId, backupId })).backup;
      return last !== undefined && last.status !== BackupStatus.RUNNING;
    },
    30 * 60_000,
    500,
  );
  if (!last || last.status !== BackupStatus.SUCCEEDED) throw new Error(`backup ${backupId} failed: ${last?.reason}`);
  return last;
}

/** Waits until the tenant's first (scheduled) backup is done, so the next one is ours. */
async function noBackupRunning(fleet: BenchFleet, tenantId: string): Promise<void> {
  await poll(
    `${tenantId}: a finished backup and none running`,
    async () => {
      const list = (await fleet.client.listBackups({ tenantId })).backups;
      return list.some((b) => b.status === BackupStatus.SUCCEEDED) && !list.some((b) => b.status === BackupStatus.RUNNING);
    },
    10 * 60_000,
    500,
  );
}

/** Restores `tenantId` (latest) as `copy`; ms until the restore succeeded and until a query went through. */
async function restoreLatest(
  fleet: BenchFleet,
  router: BenchRouter,
  tenantId: string,
  copy: string,
): Promise<{ restore: Restore; restoredMs: number; servingMs: number }> {
  const t0 = performance.now();
  const started = await fleet.client.restoreTenant({ id: tenantId, target: { case: 'latest', value: true }, asTenantId: copy });
  const restoreId = started.restore?.id ?? '';
  let restore: Restore | undefined;
  await poll(
    `restore ${restoreId}`,
    async () => {
      restore = (await fleet.client.getRestore({ tenantId: copy, id: restoreId })).restore;
      return restore !== undefined && restore.state !== RestoreState.RUNNING;
    },
    30 * 60_000,
    100,
  );
  if (!restore || restore.state !== RestoreState.SUCCEEDED) throw new Error(`restore of ${tenantId} failed: ${restore?.reason}`);
  const restoredMs = performance.now() - t0;
  await fleet.client.setTenantAccess({ id: copy, externalAccess: true });
  await poll(`${copy} queryable`, () => queryable(router, `${tenantId}.${copy}`, tenantId), 120_000, 20);
  return { restore, restoredMs, servingMs: performance.now() - t0 };
}

/** Postgres processes of one instance (their cwd is its data directory). */
function instanceProcesses(fleet: BenchFleet, tenantId: string): number[] {
  const dirs = fleet.hostDataRoots.map((r) => path.join(r, 'instances', tenantId, 'data'));
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (dirs.includes(fs.readlinkSync(`/proc/${e}/cwd`))) pids.push(Number(e));
    } catch (err) {
      if (!['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return pids;
}

/** One RPO sample: writer, freeze at a random moment, restore latest, compare. */
async function rpoSample(fleet: BenchFleet, router: BenchRouter, archiveTimeout: number, n: number): Promise<number> {
  const id = `rpo${archiveTimeout}-${n}`;
  await createTenant(fleet, id, archiveTimeout);
  await noBackupRunning(fleet, id);
  const w = client(router, id, id);
  await w.connect();
  await w.query('create table ticks (id bigserial primary key, at timestamptz not null default clock_timestamp())');
  const runFor = (archiveTimeout + Math.random() * archiveTimeout * 1.5) * 1000;
  const until = Date.now() + runFor;
  let lastAck = 0;
  while (Date.now() < until) {
    const r = await w.query<{ at: Date }>('insert into ticks default values returning at');
    lastAck = r.rows[0]?.at.getTime() ?? lastAck;
    await sleep(50);
  }
  // The disks are gone: nothing more leaves this instance.
  const frozen = instanceProcesses(fleet, id);
  for (const pid of frozen) process.kill(pid, 'SIGSTOP');
  await w.end().catch(() => undefined);
  try {
    const copy = `${id}-copy`;
    await restoreLatest(fleet, router, id, copy);
    const c = client(router, `${id}.${copy}`, id);
    await c.connect();
    const r = await c.query<{ at: Date | null }>('select max(at) as at from ticks');
    await c.end();
    const newest = r.rows[0]?.at?.getTime() ?? 0;
    return (lastAck - newest) / 1000;
  } finally {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
  }
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-bench-backup-repo-'));
  fs.chmodSync(base, 0o755);
  // Not made here: the agents make a missing repository directory for the postgres OS user.
  const repo = path.join(base, 'repo');
  try {
    await withFleet({ name: 'backup', block: 37, agents: 2, routers: 1, coordinatorArgs: ['--backup-repo', `posix:${repo}`] }, async (fleet) => {
      const router = fleet.routers[0];
      if (!router) throw new Error('router expected');
      const id = 'big';
      await createTenant(fleet, id, 60);
      await poll(`${id} queryable`, () => queryable(router, id, id), 60_000, 50);
      const init0 = performance.now();
      await run('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', router.host, '-p', String(router.port), '-U', id, id], { PGPASSWORD: PASSWORD });
      const initS = (performance.now() - init0) / 1000;
      const sizeRow = await (async () => {
        const c = client(router, id, id);
        await c.connect();
        const r = await c.query<{ size: string }>('select pg_database_size(current_database())::text as size');
        await c.end();
        return Number(r.rows[0]?.size ?? 0);
      })();
      await noBackupRunning(fleet, id);
      const asked = await fleet.client.createBackup({ tenantId: id, type: BackupType.FULL });
      const full = await finishedBackup(fleet, id, asked.backup?.id ?? '');
      const fullS = seconds(full.startedAt?.seconds, full.finishedAt?.seconds);
      const restored = await restoreLatest(fleet, router, id, 'big-copy');

      const rpo: Array<{ timeout: number; values: number[] }> = [];
      for (const timeout of [60, 10]) {
        const values: number[] = [];
        for (let n = 0; n < RPO_RUNS; n++) values.push(await rpoSample(fleet, router, timeout, n));
        rpo.push({ timeout, values });
      }

      const restoreOk = restored.servingMs < 60_000;
      report('backup', {
        tables: [
          {
            title: `Base backup and restore (pgbench -i -s ${SCALE}: ${(sizeRow / MiB).toFixed(0)} MiB, loaded in ${initS.toFixed(1)} s)`,
            columns: ['what', 'value', 'goal'],
            rows: [
              ['full backup: seconds', fullS, ''],
              ['full backup: MB/s (database size / duration)', sizeRow / MiB / Math.max(fullS, 1), ''],
              ['full backup: added to the repository (MiB)', Number(full.repoSizeBytes) / MiB, ''],
              ['restore latest -> SUCCEEDED (s)', restored.restoredMs / 1000, ''],
              ['restore latest -> first query through the router (s)', restored.servingMs / 1000, `< 60 s ${verdict(restoreOk)}`],
            ],
          },
          {
            title: `Data-loss window under a continuous writer (${RPO_RUNS} runs each; instance frozen at a random moment, restored latest)`,
            columns: ['archive_timeout', 'RPO p50 (s)', 'RPO max (s)', 'goal'],
            rows: rpo.map((r) => {
              const s = summarize(r.values);
              return [`${r.timeout} s`, s.p50, s.max, `<= ${r.timeout + 1} s ${verdict(s.max <= r.timeout + 1)}`];
            }),
          },
        ],
        data: {
          scale: SCALE,
          databaseBytes: sizeRow,
          pgbenchInitSeconds: initS,
          full: { seconds: fullS, repoSizeBytes: Number(full.repoSizeBytes) },
          restore: { restoredMs: restored.restoredMs, servingMs: restored.servingMs },
          rpo,
        },
      });
    });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
