import { describe, expect, it } from 'vitest';
import { checkInPlaceUpgrade, checkUpgrade, upgradeRefusalMessage, type UpgradeRequestFacts, type UpgradeSourceFacts } from './upgrade-check.js';

const clean: UpgradeSourceFacts = { major: 15, walLevel: 'logical', largeObjects: [], unloggedTables: [], tablesWithoutIdentity: [] };
const request = (over: Partial<UpgradeRequestFacts> = {}): UpgradeRequestFacts => ({
  tenantId: 'acme',
  fromMajor: 15,
  toMajor: 18,
  status: 'ACTIVE',
  members: 1,
  targetHosts: ['h2'],
  dumpClientMajors: [15],
  busy: false,
  replicaIdentityFull: false,
  source: clean,
  ...over,
});
const codes = (c: ReturnType<typeof checkUpgrade>): string[] => (c.ok ? [] : c.refusals.map((r) => r.code));

describe('checkUpgrade', () => {
  it('lets a clean single-node tenant go, with the pg_dump that reads its major', () => {
    expect(checkUpgrade(request())).toEqual({ ok: true, dumpClientMajor: 15, setIdentityFull: [] });
    // The newest client that can read the source wins; an older one cannot read a newer server.
    expect(checkUpgrade(request({ dumpClientMajors: [14, 15, 17] }))).toMatchObject({ ok: true, dumpClientMajor: 17 });
  });

  it('refuses a target that is not newer, or that no host runs', () => {
    expect(codes(checkUpgrade(request({ toMajor: 15 })))).toEqual(['TARGET_NOT_NEWER']);
    expect(codes(checkUpgrade(request({ toMajor: 14 })))).toEqual(['TARGET_NOT_NEWER']);
    const none = checkUpgrade(request({ targetHosts: [] }));
    expect(codes(none)).toEqual(['TARGET_NOT_RUNNABLE']);
    expect(none.ok ? '' : none.refusals[0]?.message).toContain('PostgreSQL 18');
  });

  it("refuses a target major that cannot serve the tenant's backups, with the version rules' reason", () => {
    const c = checkUpgrade(request({ targetProblem: 'PostgreSQL 18 cannot be backed up here: no backups: pgBackRest 2.45 backs up PostgreSQL up to 16' }));
    expect(codes(c)).toEqual(['TARGET_UNSUPPORTED']);
    expect(c.ok ? '' : c.refusals[0]?.message).toContain('pgBackRest 2.45');
  });

  it('refuses with the reason when hosts run the target major but none has room beside the old instance', () => {
    const full = checkUpgrade(request({ targetHosts: [], runnableHosts: 2, noRoomReason: 'instance 1 of 1: no host fits: 2 without room' }));
    expect(codes(full)).toEqual(['NO_ROOM']);
    expect(full.ok ? '' : full.refusals[0]?.message).toMatch(/no host that runs PostgreSQL 18 has room .*\(instance 1 of 1: no host fits: 2 without room\)/);
  });

  it('refuses when no pg_dump on the source host can read the source', () => {
    const c = checkUpgrade(request({ fromMajor: 16, dumpClientMajors: [15] }));
    expect(codes(c)).toEqual(['NO_DUMP_CLIENT']);
    expect(c.ok ? '' : c.refusals[0]?.message).toContain('pg_dump 15');
    expect(codes(checkUpgrade(request({ dumpClientMajors: [] })))).toEqual(['NO_DUMP_CLIENT']);
  });

  it('lists everything logical replication would not carry at once', () => {
    const source: UpgradeSourceFacts = {
      ...clean,
      largeObjects: [{ database: 'app', count: 3 }],
      unloggedTables: ['app: public.cache'],
      tablesWithoutIdentity: ['app: public.log'],
    };
    const c = checkUpgrade(request({ source }));
    expect(codes(c)).toEqual(['LARGE_OBJECTS', 'UNLOGGED_TABLES', 'NO_REPLICA_IDENTITY']);
    const message = c.ok ? '' : upgradeRefusalMessage('acme', c.refusals);
    expect(message).toContain('large objects');
    expect(message).toContain('app: 3');
    expect(message).toContain('app: public.cache');
    expect(message).toContain('app: public.log');
  });

  it('sets REPLICA IDENTITY FULL only when asked, and says on which tables', () => {
    const source = { ...clean, tablesWithoutIdentity: ['app: public.log'] };
    expect(checkUpgrade(request({ source, replicaIdentityFull: true }))).toEqual({ ok: true, dumpClientMajor: 15, setIdentityFull: ['app: public.log'] });
  });

  it('needs wal_level=logical, a running source, an ACTIVE single-node tenant and no other operation', () => {
    expect(codes(checkUpgrade(request({ source: { ...clean, walLevel: 'replica' } })))).toEqual(['WAL_LEVEL']);
    expect(codes(checkUpgrade(request({ source: undefined })))).toEqual(['SOURCE_UNREADABLE']);
    expect(codes(checkUpgrade(request({ status: 'MOVING', busy: true, members: 2 })))).toEqual(['UPGRADE_BUSY', 'TENANT_NOT_ACTIVE', 'REPLICATED_TENANT']);
  });

  it('refuses an in-place upgrade where the target major has no pg_upgrade, and says why', () => {
    const npm = [
      { major: '15', pgUpgrade: true, pgDump: true },
      { major: '18', pgUpgrade: false },
    ];
    const r = checkInPlaceUpgrade({ tenantId: 'acme', hostId: 'h1', fromMajor: 15, toMajor: 18, hostMajors: npm });
    expect(r?.code).toBe('NO_PG_UPGRADE');
    expect(r?.message).toContain('no pg_upgrade of PostgreSQL 18');
    expect(r?.message).toContain('logical replication');
    expect(checkInPlaceUpgrade({ tenantId: 'acme', hostId: 'h1', fromMajor: 15, toMajor: 17, hostMajors: npm })?.code).toBe('TARGET_NOT_RUNNABLE');
    expect(checkInPlaceUpgrade({ tenantId: 'acme', hostId: 'h1', fromMajor: 15, toMajor: 15, hostMajors: npm })?.code).toBe('TARGET_NOT_NEWER');
    expect(checkInPlaceUpgrade({ tenantId: 'acme', hostId: 'h1', fromMajor: 15, toMajor: 18, hostMajors: [{ major: '18', pgUpgrade: true }] })).toBeUndefined();
  });

  it('shortens long lists', () => {
    const many = Array.from({ length: 25 }, (_, i) => `app: public.t${i}`);
    const c = checkUpgrade(request({ source: { ...clean, unloggedTables: many } }));
    expect(c.ok ? '' : c.refusals[0]?.message).toContain('and 15 more');
  });
});
