/**
 * Placement of the NEW backlog, one page at a time: waiting tenants come from one query (NEW
 * without placement, LIMIT), host allocation is summed once and then kept current (an
 * `AllocationLedger`: updated per decision, re-summed per host that others' commits moved), and
 * hosts are told from the decisions themselves. A tenant that cannot be placed gets one
 * "unplaced" event when it starts waiting, not one per pass.
 */
import { placeTenants, type PlacementRequest } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { candidatesFrom, versionRequest } from './host-candidates.js';
import { newPlacement, type NewEvent, type PlacementRecord, type TenantRecord } from '../domain/model.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import type { Commit, StoreReads } from '../store/contract.js';
import { syncTenants } from './tenant-sync.js';
import { AllocationLedger } from './allocation-ledger.js';

const SCHEDULER = 'system:scheduler';
const WAITING = 'waiting for a host';

/** Walks the backlog from oldest to newest across calls; `restart()` begins a new walk. */
export class PlacementRun {
  private cursor: { createdAt: number; id: string } | undefined;
  private readonly allocations: AllocationLedger;
  /** Our own placement commit is on its way: its inserts are in the ledger already. */
  private ownCommit = false;
  /** Tenants considered and placed by the current walk. */
  private walk = { considered: 0, placed: 0 };
  /** The placement pass in flight: passes run one after another, never side by side. */
  private passes: Promise<unknown> = Promise.resolve();
  /** Passes that placed something, so far (a list of waiting tenants read before one may be stale). */
  private placingCommits = 0;

  private readonly unsubscribe: () => void;

  constructor(private readonly ctx: CoordinatorContext) {
    this.allocations = new AllocationLedger(ctx.store.read);
    this.unsubscribe = ctx.store.subscribe((commit) => this.noteCommit(commit));
  }

  /** Stops following the store's commits. */
  close(): void {
    this.unsubscribe();
  }

  /** Others' commits may move hosts' allocations; our own placements are in the ledger already. */
  private noteCommit(commit: Commit): void {
    if (this.ownCommit && commit.placementHosts.length > 0) this.ownCommit = false;
    else this.allocations.noteCommit(commit);
  }

  /** Starts the next walk at the oldest waiting tenant. */
  restart(): void {
    this.cursor = undefined;
    this.walk = { considered: 0, placed: 0 };
  }

  /** What the current (or just finished) walk did. */
  get walked(): { considered: number; placed: number } {
    return { ...this.walk };
  }

  /** Places up to `limit` waiting tenants; returns how many were considered (0 = walk finished). */
  async step(limit: number): Promise<number> {
    const asOf = this.placingCommits;
    const waiting = await this.ctx.store.read.tenants.listWaiting(limit, this.cursor);
    if (waiting.length === 0) {
      this.cursor = undefined;
      return 0;
    }
    const last = waiting[waiting.length - 1] as TenantRecord;
    this.cursor = { createdAt: last.createdAt, id: last.id };
    this.walk.considered += waiting.length;
    this.walk.placed += await this.place(waiting, asOf);
    return waiting.length;
  }

  /**
   * Places just these tenants, those of them still waiting (NEW, not being deleted, no
   * placement), outside any walk: a create is placed at once without re-reading the backlog.
   */
  async placeNow(ids: Iterable<string>): Promise<number> {
    const asOf = this.placingCommits;
    // Two reads for the whole batch (every tenant created while the previous one was placed): on a
    // store across the network each read is a round trip.
    const waiting = await waitingAmong(this.ctx.store.read, [...ids]);
    return waiting.length === 0 ? 0 : await this.place(waiting, asOf);
  }

  /**
   * Decides and commits placements for `waiting` in one transaction; returns how many were placed.
   * The backlog walk and a create's immediate placement may both have read the same tenant as
   * waiting: the passes run one at a time, and a pass whose list was read before another pass
   * placed something takes only the tenants still waiting inside its own transaction, so it leaves
   * a tenant the earlier one placed alone (done, not a conflict). `asOf`: placingCommits when the
   * list was read.
   */
  private place(waiting: TenantRecord[], asOf: number): Promise<number> {
    const pass = this.passes.then(() => this.placeOnce(waiting, asOf));
    this.passes = pass.catch(() => undefined);
    return pass;
  }

  private async placeOnce(read: TenantRecord[], asOf: number): Promise<number> {
    const store = this.ctx.store;
    const now = this.ctx.clock();
    const allocations = await this.allocations.current(now);
    /** Hosts this pass added placements to in the ledger: stale again if its commit fails. */
    const added: string[] = [];
    const placedCount = await store
      .transaction(async (tx) => {
        const waiting =
          asOf === this.placingCommits
            ? read
            : await waitingAmong(
                tx,
                read.map((t) => t.id),
              );
        if (waiting.length === 0) return 0;
        const requests: PlacementRequest[] = waiting.map((t) => ({
          tenantId: t.id,
          resources: t.spec.resources,
          nodes: t.spec.nodes,
          placement: t.spec.placement,
          ...versionRequest(t),
        }));
        const hosts = await tx.hosts.list();
        const addressOf = new Map(hosts.map((h) => [h.id, h.address]));
        // Creations in flight change with every report, so they are read fresh (a small indexed
        // query); ready spares are what each agent's last heartbeat said.
        const candidates = candidatesFrom(
          hosts,
          allocations,
          await tx.placements.creating(),
          (id) => this.ctx.spares.get(id),
          this.ctx.versions,
          (id) => this.ctx.slots.get(id),
        );
        const { placed, unplaced } = placeTenants(candidates, requests, this.ctx.placementPolicy);
        const byId = new Map(waiting.map((t) => [t.id, t]));
        // The slice's writes go as one statement per kind (placements, events, statuses, routes),
        // not one per tenant: on a store across the network each statement is a round trip.
        const placements: PlacementRecord[] = [];
        const events: NewEvent[] = [];
        for (const decision of placed) {
          const tenant = byId.get(decision.tenantId) as TenantRecord;
          if (decision.hostIds.length > 1) await ensureReplicationSecret(tx, this.ctx.keys, decision.tenantId, now);
          for (const [i, hostId] of decision.hostIds.entries()) {
            placements.push(
              newPlacement({ tenantId: decision.tenantId, hostId, role: i === 0 ? 'PRIMARY' : 'REPLICA', address: addressOf.get(hostId) ?? '', now }),
            );
            this.allocations.add(hostId, tenant);
            added.push(hostId);
            tx.record({ kind: 'desired', tenantId: decision.tenantId, hostId });
          }
          events.push({
            time: now,
            principal: SCHEDULER,
            action: 'scheduler.placed',
            tenantId: decision.tenantId,
            hostId: decision.hostIds[0] ?? '',
            message: `primary on ${decision.hostIds[0]}${decision.hostIds.length > 1 ? `, replicas on ${decision.hostIds.slice(1).join(', ')}` : ''}`,
          });
        }
        await tx.placements.insertMany(placements);
        await tx.events.appendMany(events);
        await syncTenants(
          tx,
          placed.map((d) => d.tenantId),
          { now, health: this.ctx.health, principal: SCHEDULER },
        );
        const waitingNow: TenantRecord[] = [];
        const startedWaiting: NewEvent[] = [];
        for (const u of unplaced) {
          const tenant = byId.get(u.tenantId);
          const reason = `${WAITING}: ${u.reason}`;
          if (!tenant || tenant.statusReason === reason) continue;
          waitingNow.push({ ...tenant, statusReason: reason, updatedAt: now });
          // One event when the tenant starts waiting; later reason changes only update its status.
          if (tenant.statusReason.startsWith(WAITING)) continue;
          startedWaiting.push({
            time: now,
            principal: SCHEDULER,
            action: 'scheduler.unplaced',
            tenantId: u.tenantId,
            outcome: 'FAILURE',
            message: u.reason,
          });
        }
        await tx.tenants.updateMany(waitingNow);
        await tx.events.appendMany(startedWaiting);
        if (startedWaiting.length > 0) this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'unplaced' }, startedWaiting.length);
        // Our own inserts are in the ledger already; anybody else's make their hosts stale.
        this.ownCommit = placed.length > 0;
        return placed.length;
      })
      .catch((error: unknown) => {
        this.allocations.markStale(added);
        throw error;
      })
      .finally(() => {
        this.ownCommit = false;
      });
    if (placedCount > 0) {
      this.placingCommits++;
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'placed' }, placedCount);
    }
    return placedCount;
  }
}

/**
 * The tenants of `ids` waiting for placement as `reads` sees them (NEW, not being deleted, no
 * placement), as stored now, in the order of `ids`: two reads whatever their number.
 */
export async function waitingAmong(reads: StoreReads, ids: readonly string[]): Promise<TenantRecord[]> {
  if (ids.length === 0) return [];
  const tenants = new Map((await reads.tenants.getMany(ids)).map((t) => [t.id, t]));
  const placed = new Set((await reads.placements.listOfTenants(ids)).map((p) => p.tenantId));
  const out: TenantRecord[] = [];
  for (const id of new Set(ids)) {
    const t = tenants.get(id);
    if (t && t.status === 'NEW' && !t.deleting && !placed.has(id)) out.push(t);
  }
  return out;
}
