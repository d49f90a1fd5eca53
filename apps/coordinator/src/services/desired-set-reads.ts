/**
 * The reads a desired set makes for each of its instances (the tenant, its placements, users,
 * databases, upgrade, stanza, restores, and the hosts of its members) answered from a few
 * set-based reads of every tenant the set names, read once before the set is built.
 *
 * Read tenant by tenant, a host's full set cost about seven store calls per instance: a fleet's
 * first start (every host needs its full set) spent most of its Hello storm there, and on a store
 * across the network each call is a round trip. The answers are the store's own: the read-ahead is
 * made inside the transaction that builds the set, and building a set writes nothing.
 */
import type { DatabaseRecord, HostRecord, PlacementRecord, RestoreRecord, StanzaRecord, TenantRecord, UpgradeRecord, UserRecord } from '../domain/model.js';
import type { StoreReads } from '../store/contract.js';
import { groupBy } from './group-by.js';

/** `base` with some of its methods answered otherwise; every other call goes to `base`. */
function over<T extends object>(base: T, overrides: Partial<T>): T {
  return Object.assign(Object.create(base) as T, overrides);
}

/** What was read ahead, by tenant id (a tenant read and found nothing has an entry too: nothing). */
interface ReadAhead {
  tenants: Map<string, TenantRecord | undefined>;
  placements: Map<string, PlacementRecord[]>;
  users: Map<string, UserRecord[]>;
  databases: Map<string, DatabaseRecord[]>;
  upgrades: Map<string, UpgradeRecord>;
  /** Only the tenants whose restores a desired instance can ask for (see below). */
  restores: Map<string, RestoreRecord[]>;
  /** Only when the fleet has a backup repository (no stanza is read without one). */
  stanzas: Map<string, StanzaRecord> | undefined;
  hosts: Map<string, HostRecord>;
}

/**
 * Reads the desired-set facts of `tenantIds` in one read per kind and returns reads that answer
 * from them (any other read, or one about another tenant, goes to `tx`). `placementsRead`: every
 * placement of those tenants when the caller read them already in this transaction.
 */
export async function readAheadForDesiredSet(
  tx: StoreReads,
  tenantIds: readonly string[],
  backup: boolean,
  placementsRead?: readonly PlacementRecord[],
): Promise<StoreReads> {
  const ids = [...new Set(tenantIds)];
  const found = await tx.tenants.getMany(ids);
  const tenants = new Map<string, TenantRecord | undefined>(ids.map((id) => [id, undefined]));
  for (const t of found) tenants.set(t.id, t);
  const placements = groupBy(placementsRead ?? (await tx.placements.listOfTenants(ids)), (p) => p.tenantId);
  // Restores matter only to a tenant being restored or a primary never realized (restore-progress.ts).
  const restoring = found
    .filter((t) => t.status === 'RESTORING' || (placements.get(t.id) ?? []).some((p) => p.role === 'PRIMARY' && !p.realizedOnce))
    .map((t) => t.id);
  const restores = new Map<string, RestoreRecord[]>(restoring.map((id) => [id, []]));
  if (restoring.length > 0) for (const r of await tx.restores.listOfTargets(restoring)) restores.get(r.targetTenantId)?.push(r);
  const hostIds = [...new Set([...placements.values()].flat().map((p) => p.hostId))];
  const ahead: ReadAhead = {
    tenants,
    placements,
    users: groupBy(await tx.users.listOfTenants(ids), (u) => u.tenantId),
    databases: groupBy(await tx.databases.listOfTenants(ids), (d) => d.tenantId),
    upgrades: new Map((await tx.upgrades.getMany(ids)).map((u) => [u.tenantId, u])),
    restores,
    stanzas: backup ? new Map((await tx.backups.getStanzaMany(ids)).map((s) => [s.tenantId, s])) : undefined,
    hosts: new Map((hostIds.length > 0 ? await tx.hosts.getMany(hostIds) : []).map((h) => [h.id, h])),
  };
  return answering(tx, ahead);
}

function answering(tx: StoreReads, a: ReadAhead): StoreReads {
  const read = (id: string): boolean => a.tenants.has(id);
  return over(tx, {
    tenants: over(tx.tenants, { get: async (id) => (read(id) ? a.tenants.get(id) : await tx.tenants.get(id)) }),
    placements: over(tx.placements, {
      list: async (filter = {}) =>
        filter.tenantId !== undefined && filter.hostId === undefined && read(filter.tenantId)
          ? [...(a.placements.get(filter.tenantId) ?? [])]
          : await tx.placements.list(filter),
    }),
    users: over(tx.users, { list: async (id) => (read(id) ? [...(a.users.get(id) ?? [])] : await tx.users.list(id)) }),
    databases: over(tx.databases, { list: async (id) => (read(id) ? [...(a.databases.get(id) ?? [])] : await tx.databases.list(id)) }),
    upgrades: over(tx.upgrades, { get: async (id) => (read(id) ? a.upgrades.get(id) : await tx.upgrades.get(id)) }),
    restores: over(tx.restores, { list: async (id) => (a.restores.has(id) ? [...(a.restores.get(id) ?? [])] : await tx.restores.list(id)) }),
    backups: over(tx.backups, {
      getStanza: async (id) => (a.stanzas && read(id) ? a.stanzas.get(id) : await tx.backups.getStanza(id)),
    }),
    hosts: over(tx.hosts, { get: async (id) => (a.hosts.has(id) ? a.hosts.get(id) : await tx.hosts.get(id)) }),
  });
}
