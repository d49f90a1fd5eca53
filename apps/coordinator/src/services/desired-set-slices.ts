/**
 * A host's full desired set built in slices: each slice is its own read transaction over a bounded
 * number of the host's tenants, and the event loop gets a turn between slices, so a host of
 * hundreds of instances (or a fleet of hosts saying Hello at once) never holds heartbeats, API calls
 * and route deltas behind one long transaction.
 *
 * The slices read at different moments. That is safe because every change that alters a tenant's
 * desired instance records it (`tx.record({ kind: 'desired' })`) and the agent hub sends it as a
 * delta after the full set; a tenant placed on the host after the first slice listed its tenants
 * arrives the same way.
 */
import type { Store, StoreReads } from '../store/contract.js';
import { desiredSetForHost, type HostDesiredSet, type ReplicationDeps } from './desired-set.js';
import { oldInstancesOn } from './restore-progress.js';
import type { VersionCatalog } from './versions.js';

/** Tenants per slice: a few milliseconds of store reads and spec building on an idle machine. */
export const DESIRED_SET_SLICE = 64;

/** Every tenant the host's full desired set may name: its placements, upgrades' other instances, and instances it must delete. */
export async function desiredTenantsOf(tx: StoreReads, hostId: string, replication?: ReplicationDeps): Promise<string[]> {
  const ids = new Set<string>();
  for (const p of await tx.placements.list({ hostId })) ids.add(p.tenantId);
  for (const u of await tx.upgrades.listOnHost(hostId)) ids.add(u.tenantId);
  if (replication?.backup) for (const id of await oldInstancesOn(tx, hostId)) ids.add(id);
  for (const id of replication?.retiring?.onHost(hostId) ?? []) ids.add(id);
  return [...ids].sort();
}

/** Gives the event loop a turn: sockets are read and timers run before the next slice. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The host's full desired set, `slice` tenants per read transaction. */
export async function desiredSetInSlices(
  store: Store,
  hostId: string,
  versions: VersionCatalog,
  replication?: ReplicationDeps,
  slice = DESIRED_SET_SLICE,
): Promise<HostDesiredSet> {
  if (!(Number.isInteger(slice) && slice > 0)) throw new Error(`a desired-set slice must be a positive whole number of tenants, not ${slice}`);
  const tenantIds = await store.transaction((tx) => desiredTenantsOf(tx, hostId, replication));
  const out: HostDesiredSet = { instances: [], removedTenantIds: [] };
  for (let from = 0; from < tenantIds.length; from += slice) {
    if (from > 0) await turn();
    const part = new Set(tenantIds.slice(from, from + slice));
    const built = await store.transaction((tx) => desiredSetForHost(tx, hostId, versions, part, replication));
    out.instances.push(...built.instances);
    for (const id of built.removedTenantIds) if (!out.removedTenantIds.includes(id)) out.removedTenantIds.push(id);
  }
  return out;
}
