import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { decodeSecretKey, deriveKeyId, generateSecretKey, KeyRing } from '@pgs/security';
import { DEFAULT_BACKUP_POLICY } from '@pgs/tenancy';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreRecord } from '../domain/model.js';
import { SyncQuorums } from '../live/sync-quorums.js';
import type { Store, StoreReads } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { openPostgresStore } from '../store/postgres/pg-store.js';
import { aHost, aPlacement, aTenant, anUpgrade, aUser } from '../testing/records.js';
import type { BackupSettings } from './backup-repository.js';
import { desiredSetForHost, type HostDesiredSet, type ReplicationDeps } from './desired-set.js';
import { desiredSetInSlices } from './desired-set-slices.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import { VersionCatalog } from './versions.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-reads';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });

let server: TestPostgres;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-desired-reads-'));
beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.36`, users: [{ name: 'coord', password: PW }] });
});
afterAll(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<Store>]> = [
  ['SQLite', async () => openStore({ dataDir: path.join(root, 'sqlite'), allowInit: true, routeHistory: 1000, now: Date.now() }).store],
  ['PostgreSQL', async () => openPostgresStore({ url: server.url('coord', PW), routeHistory: 1000, log })],
];

function ring(): KeyRing {
  const key = decodeSecretKey(generateSecretKey(), 'test');
  return new KeyRing([{ id: deriveKeyId(key), key }]);
}

const backup = { policy: DEFAULT_BACKUP_POLICY } as BackupSettings;

const restore = (id: string, target: string, over: Partial<RestoreRecord>): RestoreRecord => ({
  id,
  kind: 'new',
  sourceTenantId: 'src',
  targetTenantId: target,
  state: 'RUNNING',
  phase: 'recovering',
  reason: '',
  sourceStanza: 'src-1',
  toTime: 0,
  toBackupId: '',
  backupLabel: '',
  latest: true,
  hostId: 'h1',
  oldHosts: [],
  oldLsn: '',
  startedAt: 10,
  finishedAt: 0,
  recoveredLsn: '',
  recoveredTime: 0,
  missingWalBytes: 0,
  timeline: 0,
  createdBy: 'operator:admin',
  ...over,
});

/**
 * Host h1 holds one of each kind of instance a desired set treats apart: a single instance with
 * users and databases being dropped, a replicated primary (a replica on a READY host, one on a DOWN
 * host) and a stopped replica whose primary is stopped, a tenant being deleted, one being restored, one whose restore failed
 * there, an upgrade's other instance, backups on and off.
 */
async function fill(store: Store, keys: KeyRing): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.hosts.put(aHost('h1'));
    await tx.hosts.put(aHost('h2', { address: '127.0.0.12' }));
    await tx.hosts.put(aHost('h3', { address: '127.0.0.13', state: 'DOWN' }));
    const realized = { realization: 'REALIZED', realizedOnce: true, instanceState: 'RUNNING', address: '127.0.0.11', port: 6000 } as const;
    const tenant = (id: string, over: Parameters<typeof aTenant>[1] = {}) => aTenant(id, { status: 'ACTIVE', ...over });
    await tx.tenants.insert(tenant('a'));
    await tx.placements.insert(aPlacement('a', 'h1', { ...realized, port: 6001 }));
    await tx.users.insert(aUser('a', 'a', { owner: true, status: 'ACTIVE' }));
    await tx.users.insert(aUser('a', 'gone', { status: 'DELETING' }));
    for (const [name, status] of [
      ['app', 'ACTIVE'],
      ['old', 'DELETING'],
    ] as const)
      await tx.databases.insert({ tenantId: 'a', name, owner: 'a', description: '', status, statusReason: '', revision: 1, createdAt: 1 });
    await tx.backups.putStanza({ tenantId: 'a', stanza: 'a-1', archivedThrough: 0, lastArchivedWal: '', createdAt: 1 });

    const replicated = (id: string, nodes = 2) => tenant(id, { spec: { ...aTenant(id).spec, nodes, syncReplicas: 1 } });
    await tx.tenants.insert(replicated('b', 3));
    await tx.placements.insert(aPlacement('b', 'h1', { ...realized, port: 6002 }));
    await tx.placements.insert(aPlacement('b', 'h2', { ...realized, role: 'REPLICA', address: '127.0.0.12', port: 6002 }));
    await tx.placements.insert(aPlacement('b', 'h3', { ...realized, role: 'REPLICA', address: '127.0.0.13', port: 6002 }));
    await tx.users.insert(aUser('b', 'b', { owner: true, status: 'ACTIVE' }));
    await ensureReplicationSecret(tx, keys, 'b', 1);
    await tx.tenants.insert(replicated('c'));
    await tx.placements.insert(aPlacement('c', 'h2', { ...realized, address: '127.0.0.12', port: 6003, instanceState: 'STOPPED' }));
    await tx.placements.insert(aPlacement('c', 'h1', { ...realized, role: 'REPLICA', port: 6003, instanceState: 'STOPPED' }));
    await tx.users.insert(aUser('c', 'c', { owner: true, status: 'ACTIVE' }));
    await ensureReplicationSecret(tx, keys, 'c', 1);

    await tx.tenants.insert(tenant('d', { deleting: true }));
    await tx.placements.insert(aPlacement('d', 'h1', { ...realized, port: 6004 }));

    await tx.tenants.insert(tenant('r', { status: 'RESTORING' }));
    await tx.placements.insert(aPlacement('r', 'h1', { port: 6005 }));
    await tx.users.insert(aUser('r', 'r', { owner: true }));
    await tx.restores.insert(restore('r-old', 'r', { state: 'FAILED', phase: 'done', hostId: 'h2', startedAt: 5 }));
    await tx.restores.insert(restore('r-now', 'r', { backupLabel: '20260101-000000F' }));
    await tx.tenants.insert(tenant('f', { status: 'ERROR' }));
    await tx.placements.insert(aPlacement('f', 'h1', { port: 6006 }));
    await tx.restores.insert(restore('f-1', 'f', { state: 'FAILED', phase: 'done' }));

    await tx.tenants.insert(tenant('u'));
    await tx.placements.insert(aPlacement('u', 'h2', { ...realized, address: '127.0.0.12', port: 6007 }));
    await tx.users.insert(aUser('u', 'u', { owner: true, status: 'ACTIVE' }));
    await tx.upgrades.put(
      anUpgrade('u', {
        fromHostId: 'h2',
        toHostId: 'h1',
        other: { hostId: 'h1', major: 18, realizedRevision: 0, failedReason: '', state: '', address: '127.0.0.11', port: 6008 },
      }),
    );

    // On another host only: never named in h1's set.
    await tx.tenants.insert(tenant('z'));
    await tx.placements.insert(aPlacement('z', 'h2', { ...realized, port: 6009 }));
  });
}

/** The set as the build reads it tenant by tenant (a set of one tenant reads nothing ahead), merged. */
async function oneByOne(
  tx: StoreReads,
  hostId: string,
  versions: VersionCatalog,
  ids: readonly string[],
  replication: ReplicationDeps,
): Promise<HostDesiredSet> {
  const out: HostDesiredSet = { instances: [], removedTenantIds: [] };
  for (const id of ids) {
    const one = await desiredSetForHost(tx, hostId, versions, new Set([id]), replication);
    out.instances.push(...one.instances);
    out.removedTenantIds.push(...one.removedTenantIds);
  }
  return out;
}

const sorted = (s: HostDesiredSet): HostDesiredSet => ({
  instances: [...s.instances].sort((x, y) => (x.tenantId < y.tenantId ? -1 : 1)),
  removedTenantIds: [...s.removedTenantIds].sort(),
});

describe.each(stores)('a desired set read ahead (%s)', (_name, open) => {
  it('is the set read tenant by tenant, for a whole host, a slice and a delta, with backups on and off', async () => {
    const store = await open();
    try {
      const keys = ring();
      await fill(store, keys);
      const versions = new VersionCatalog([
        { id: '15', image: 'pg:15', deprecated: false },
        { id: '18', image: 'pg:18', deprecated: false },
      ]);
      for (const withBackup of [false, true]) {
        const replication: ReplicationDeps = { keys, quorums: new SyncQuorums(), ...(withBackup ? { backup } : {}) };
        const all = ['a', 'b', 'c', 'd', 'f', 'r', 'u'];
        const expected = await store.transaction((tx) => oneByOne(tx, 'h1', versions, all, replication));
        // What the fixture is for: each kind of instance is there, or removed, or left out as it should be.
        expect(expected.instances.map((i) => i.tenantId).sort()).toEqual(['a', 'b', 'c', 'r', 'u']);
        expect(expected.removedTenantIds).toEqual(['d']);
        const byId = new Map(expected.instances.map((i) => [i.tenantId, i]));
        expect(byId.get('a')?.dropRoles).toEqual(['gone']);
        expect(byId.get('a')?.dropDatabases).toEqual(['old']);
        expect(byId.get('a')?.backup !== undefined).toBe(withBackup);
        expect(byId.get('b')?.replicationSlots).toHaveLength(2);
        // Its replica on the DOWN host is not waited for.
        expect(byId.get('b')?.synchronousStandbyNames).not.toContain('h3');
        expect(byId.get('b')?.synchronousStandbyNames).toContain('h2');
        expect(byId.get('c')?.runState).toBe('STOPPED');
        expect(byId.get('r')?.restore !== undefined).toBe(withBackup);
        expect(byId.get('u')?.version).toBe('18');

        const whole = await store.transaction((tx) => desiredSetForHost(tx, 'h1', versions, undefined, replication));
        expect(sorted(whole)).toEqual(sorted(expected));
        const slices = await desiredSetInSlices(store, 'h1', versions, replication, 3);
        expect(sorted(slices)).toEqual(sorted(expected));
        const delta = await store.transaction((tx) => desiredSetForHost(tx, 'h1', versions, new Set(['b', 'c', 'z', 'nope']), replication));
        expect(sorted(delta)).toEqual(sorted({ instances: expected.instances.filter((i) => ['b', 'c'].includes(i.tenantId)), removedTenantIds: [] }));
      }
    } finally {
      await store.close();
    }
  });
});
