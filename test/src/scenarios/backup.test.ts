// Backups and point-in-time recovery end to end, with real pgBackRest under real agents: a tenant
// restored to a time into a new tenant has exactly the rows committed before that time; WAL written
// while the repository is unreachable is archived once it returns; the repository is unreadable
// without the fleet's backup key; a replicated tenant that failed over under a writer restores to a
// time after the failover; an unreplicated tenant whose host and data are lost comes back from its
// backup on another host with every archived row.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { archivedPast, backedUpTenant, idsOf, insertRange, momentBetweenWrites, range, restoreAs, serverNow, sleep } from '../harness/backups.js';
import { waitUntil } from '../harness/poll.js';
import { RowWriter } from '../harness/row-writer.js';
import { primaryOf } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import type { BackupJson, RestoreResultJson } from '../harness/views.js';

describe('backups and point-in-time recovery', () => {
  const fleet = useFleet({ name: 'backup', block: 31, agents: 3, routers: 1, backups: true });

  it('restore to a time into a new tenant gives exactly the rows committed before that time', async () => {
    const f = fleet();
    const { id, password, login } = await backedUpTenant(f, 'pitr', {
      table: 'create table rows (id int primary key, at timestamptz not null default clock_timestamp())',
    });
    await insertRange(f, login, 1, 100);
    const t = await momentBetweenWrites(f, login);
    await insertRange(f, login, 101, 200);
    await archivedPast(f, id, new Date(t.getTime() + 1000));

    const { login: copyLogin, restore } = await restoreAs(f, id, password, ['--to-time', t.toISOString()]);
    expect(await idsOf(f, copyLogin)).toEqual(range(1, 100));
    expect(new Date(restore.recoveredTime ?? 0).getTime()).toBeLessThanOrEqual(t.getTime());
    // The source goes on untouched.
    expect(await idsOf(f, login)).toEqual(range(1, 200));
  }, 240_000);

  it('a dropped table comes back: restore in place to a time before the DROP, on another host, same tenant and route', async () => {
    const f = fleet();
    const { id, login, sql } = await backedUpTenant(f, 'undo');
    await insertRange(f, login, 1, 120);
    const t = await momentBetweenWrites(f, login);
    await sql('drop table rows');
    await archivedPast(f, id, new Date(t.getTime() + 1000));
    const before = await primaryOf(f, id);

    const { restore } = await f.pgsctlJson<RestoreResultJson>(['tenant', 'restore', id, '--to-time', t.toISOString(), '--in-place', '--yes', '--wait']);
    expect(restore.state).toBe('SUCCEEDED');
    expect(restore.targetTenantId).toBe(id);
    await f.waitServing(login, 30_000);
    expect(await idsOf(f, login)).toEqual(range(1, 120));
    const after = await primaryOf(f, id);
    expect(after.hostId).not.toBe(before.hostId);
    // The old placement is gone once the restored instance serves: one primary, no leftovers.
    await waitUntil(
      `${id} has one placement`,
      () => f.tenant(id),
      (d) => d.tenant.placements.length === 1,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  }, 240_000);

  it('a time outside the recovery window is refused with the window in the message', async () => {
    const f = fleet();
    const { id } = await backedUpTenant(f, 'win', { table: null });
    const refused = await f.pgsctl(['tenant', 'restore', id, '--to-time', '2001-01-01T00:00:00Z', '--as', tenantName('never')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/window/i);
  }, 180_000);

  it('WAL written while the repository is unreachable is archived once it returns: nothing lost', async () => {
    const f = fleet();
    const { id, password, login } = await backedUpTenant(f, 'repo');
    const repo = path.join(f.root, 'backups');
    const mode = fs.statSync(repo).mode & 0o7777;
    fs.chmodSync(repo, 0o000);
    try {
      for (let i = 0; i < 5; i++) {
        await insertRange(f, login, i * 100 + 1, i * 100 + 100);
        await sleep(600);
      }
      // Archiving fails and retries; the tenant stays ACTIVE and keeps its WAL.
      const details = await waitUntil(
        `archive failures of ${id} visible`,
        () =>
          f.tenant(id) as Promise<unknown> as Promise<{
            tenant: { status: string };
            backup?: { archive?: { failedCount?: number; pendingSegments?: number } };
          }>,
        (d) => (d.backup?.archive?.failedCount ?? 0) > 0,
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(details.tenant.status).toBe('ACTIVE');
    } finally {
      fs.chmodSync(repo, mode);
    }
    const wrote = await serverNow(f, login);
    await archivedPast(f, id, wrote, 90_000);
    const { login: copyLogin } = await restoreAs(f, id, password, ['--latest']);
    expect(await idsOf(f, copyLogin)).toEqual(range(1, 500));
  }, 300_000);

  it('a copy of the repository reveals nothing without the fleet backup key', async () => {
    const f = fleet();
    const marker = `pgs-marker-${Math.random().toString(36).slice(2)}`;
    const { id } = await backedUpTenant(f, 'key', { table: `create table secrets as select repeat('${marker}', 200) as v from generate_series(1, 200)` });
    const backup = await f.pgsctlJson<BackupJson>(['backup', 'create', id, '--type', 'full', '--wait']);
    expect(backup.status).toBe('SUCCEEDED');

    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-repo-copy-'));
    try {
      fs.cpSync(path.join(f.root, 'backups'), copy, { recursive: true });
      // Not a byte of the table in the clear, in any file of the copy.
      const files = fs.readdirSync(copy, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(files.length).toBeGreaterThan(0);
      for (const e of files) expect(fs.readFileSync(path.join(e.parentPath, e.name)).includes(marker)).toBe(false);
      // pgBackRest itself cannot read the copy without the key.
      fs.chmodSync(copy, 0o755);
      spawnSync('chown', ['-R', 'postgres:postgres', copy]);
      const emptyConfig = path.join(copy, 'empty.conf');
      fs.writeFileSync(emptyConfig, '');
      const info = spawnSync(
        'runuser',
        [
          '-u',
          'postgres',
          '--',
          'pgbackrest',
          `--config=${emptyConfig}`,
          `--repo1-path=${copy}`,
          `--stanza=${backup.stanza}`,
          '--log-level-console=error',
          'info',
        ],
        { encoding: 'utf8' },
      );
      expect(`${info.stdout}${info.stderr}`).toMatch(/encrypt|cipher|unable to (load|read)|error/i);
      expect(`${info.stdout}`).not.toMatch(/full backup: /);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  }, 240_000);

  it('a replicated tenant that failed over under a writer restores to a time after the failover', async () => {
    const f = fleet();
    const { id, password, login, router, sql } = await backedUpTenant(f, 'ha', { replicas: 1, syncReplicas: 1 });
    const before = await primaryOf(f, id);
    const writer = new RowWriter(router.endpoint, login, { table: 'rows', connectTimeoutMs: 2000 });
    writer.start();
    try {
      await waitUntil(
        'writer has committed rows',
        () => writer.acked.length,
        (n) => n >= 50,
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      const killedAt = Date.now();
      await f.stopHost(before.hostIndex);
      await waitUntil(
        'writes resume after the failover',
        () => writer.firstAckAfter(killedAt),
        (x) => x !== undefined,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const resumedCount = writer.acked.length;
      await waitUntil(
        'more writes on the new primary',
        () => writer.acked.length,
        (n) => n >= resumedCount + 50,
        { timeoutMs: 20_000, intervalMs: 50 },
      );
    } finally {
      await writer.stop();
    }
    const after = await primaryOf(f, id);
    expect(after.hostId).not.toBe(before.hostId);
    const t = await serverNow(f, login);
    const committedBeforeT = await idsOf(f, login);
    await sleep(300);
    await sql('insert into rows (id) values (-1)');
    await archivedPast(f, id, new Date(t.getTime() + 1000), 90_000);

    const { login: copyLogin } = await restoreAs(f, id, password, ['--to-time', t.toISOString()]);
    expect(await idsOf(f, copyLogin)).toEqual(committedBeforeT);
    await f.restartAgent(before.hostIndex);
  }, 300_000);

  it('an unreplicated tenant whose host and data are lost comes back from its backup on another host', async () => {
    const f = fleet();
    const { id, login } = await backedUpTenant(f, 'lost');
    await insertRange(f, login, 1, 300);
    const wrote = await serverNow(f, login);
    await archivedPast(f, id, wrote);

    const lost = await primaryOf(f, id);
    const host = f.hosts[lost.hostIndex];
    if (!host) throw new Error('host expected');
    await f.stopHost(lost.hostIndex);
    fs.rmSync(path.join(host.dataRoot, 'instances', id), { recursive: true, force: true });
    await waitUntil(
      `${id} UNAVAILABLE`,
      () => f.tenant(id),
      (d) => d.tenant.status === 'UNAVAILABLE',
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    const recreated = await f.pgsctl(['tenant', 'recreate', id, '--from-backup', '--wait']);
    expect(recreated.code, recreated.stderr).toBe(0);
    const { restore } = JSON.parse(recreated.stdout) as RestoreResultJson;
    expect(restore.state).toBe('SUCCEEDED');
    expect(new Date(restore.recoveredTime ?? 0).getTime()).toBeGreaterThanOrEqual(wrote.getTime() - 1000);
    await f.waitServing(login, 30_000);
    const now = await primaryOf(f, id);
    expect(now.hostId).not.toBe(lost.hostId);
    expect(await idsOf(f, login)).toEqual(range(1, 300));
    await f.restartAgent(lost.hostIndex);
  }, 240_000);
});
