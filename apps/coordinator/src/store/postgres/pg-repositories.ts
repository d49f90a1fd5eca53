/**
 * The store's repositories over one PostgreSQL connection: as reads through the pool (each call
 * its own statement, committed data only) and as the writable repositories of a transaction on
 * the writer connection, which also record what the commit changed.
 */
import type { TokenRecord } from '@pgs/security';
import type { EventRecord, MoveRecord, NewEvent, PlacementRecord, RouteChange, RouteRecord, UpgradeRecord } from '../../domain/model.js';
import type { EventFilter, HostAllocation, RecordedChange, SealedAt, StoreReads, StoreTx, TenantFilter, TenantPage } from '../contract.js';
import { StoreConflictError, StoreNotFoundError } from '../../domain/errors.js';
import {
  BACKUP_COLUMNS,
  OPERATION_COLUMNS,
  RESTORE_COLUMNS,
  backupFromRow,
  backupValues,
  databaseFromRow,
  eventFromRow,
  hostFromRow,
  initSqlFromRow,
  operationFromRow,
  operationValues,
  placeholders,
  placementFromRow,
  restoreFromRow,
  restoreValues,
  routeFromRow,
  stanzaFromRow,
  tenantFromRow,
  tokenFromRow,
  userFromRow,
  type Row,
} from './pg-rows.js';

/** Runs one statement; driver errors come out as the store's typed errors. */
export interface Db {
  query(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[]; rowCount: number }>;
}

/**
 * An insert that a unique key (a taken id, a second primary, a second running backup) may refuse:
 * ON CONFLICT DO NOTHING and a StoreConflictError of our own, so the transaction goes on after it
 * as it does on SQLite (a failed statement would abort the whole PostgreSQL transaction), at the
 * cost of no extra round trip.
 */
async function insertOnce(db: Db, sql: string, params: readonly unknown[], what: string): Promise<void> {
  const r = await db.query(`${sql} ON CONFLICT DO NOTHING`, params);
  if (r.rowCount === 0) throw new StoreConflictError(`${what} conflicts with a stored one`);
}

/**
 * A multi-row insert (`sql` ends in RETURNING) that a unique key may refuse, all or nothing: a row
 * that conflicts is skipped (ON CONFLICT DO NOTHING keeps the transaction usable, as insertOnce),
 * and then the rows this statement did insert are deleted again by `undo`, so the batch leaves
 * nothing: one round trip, and a second only when the batch is refused.
 */
async function insertAll(
  db: Db,
  sql: string,
  params: readonly unknown[],
  count: number,
  undo: (inserted: Row[]) => Promise<unknown>,
  what: string,
): Promise<void> {
  const r = await db.query(sql, params);
  if (r.rowCount === count) return;
  await undo(r.rows);
  throw new StoreConflictError(`${what} conflicts with a stored one or another of its batch; none of the batch was written`);
}

/** An Error when a batch names one key twice (the batch would not say which of its records wins). */
function once<T>(list: readonly T[], key: (x: T) => string, what: string): void {
  if (new Set(list.map(key)).size !== list.length) throw new Error(`${what} was given a key twice`);
}

/** What a transaction changed so far, in order (a savepoint rolled back goes back to a snapshot). */
export interface Changes {
  routeChanges: RouteChange[];
  events: EventRecord[];
  desired: Array<{ tenantId: string; hostId?: string }>;
  placementHosts: Set<string>;
  roomFreed: boolean;
  toPlace: string[];
}

export function emptyChanges(): Changes {
  return { routeChanges: [], events: [], desired: [], placementHosts: new Set(), roomFreed: false, toPlace: [] };
}

/** A copy to go back to when a grouped transaction's savepoint is rolled back. */
export function snapshotChanges(c: Changes): Changes {
  return {
    routeChanges: [...c.routeChanges],
    events: [...c.events],
    desired: [...c.desired],
    placementHosts: new Set(c.placementHosts),
    roomFreed: c.roomFreed,
    toPlace: [...c.toPlace],
  };
}

function sameRoute(a: Omit<RouteRecord, 'revision'>, b: Omit<RouteRecord, 'revision'>): boolean {
  return (
    a.hostId === b.hostId &&
    a.address === b.address &&
    a.port === b.port &&
    a.state === b.state &&
    a.reason === b.reason &&
    a.externalAccess === b.externalAccess &&
    a.connectionLimit === b.connectionLimit &&
    a.poolMode === b.poolMode &&
    a.users.length === b.users.length &&
    a.users.every((u, i) => u.name === b.users[i]?.name && u.scramVerifier === b.users[i]?.scramVerifier)
  );
}

/** The conditions of a tenant filter, as SQL over the tenants table with numbered parameters. */
function tenantWhere(filter: TenantFilter, params: unknown[]): string[] {
  const clauses: string[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  if (filter.status !== undefined) clauses.push(`status = ${p(filter.status)}`);
  if (filter.hostId !== undefined) clauses.push(`id IN (SELECT tenant_id FROM placements WHERE host_id = ${p(filter.hostId)})`);
  if (filter.ids !== undefined) clauses.push(`id = ANY(${p(filter.ids)}::text[])`);
  if (filter.reasonPrefix !== undefined) clauses.push(`left(status_reason, ${p(filter.reasonPrefix.length)}) = ${p(filter.reasonPrefix)}`);
  for (const [key, value] of Object.entries(filter.labels ?? {})) clauses.push(`spec -> 'labels' ->> ${p(key)} = ${p(value)}`);
  return clauses;
}

const where = (clauses: string[]): string => (clauses.length === 0 ? '' : ` WHERE ${clauses.join(' AND ')}`);

async function one(db: Db, sql: string, params: readonly unknown[]): Promise<Row | undefined> {
  return (await db.query(sql, params)).rows[0];
}

async function counts(db: Db, sql: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of (await db.query(sql)).rows) out[String(r.status)] = Number(r.n);
  return out;
}

/** Read-only repositories over `db`. */
export function makeReads(db: Db, routeHistory: number): StoreReads {
  return makeRepositories(db, undefined, routeHistory);
}

/** Writable repositories over the writer connection inside a transaction; `changes` collects what it changed. */
export function makeTx(db: Db, changes: Changes, routeHistory: number): StoreTx {
  return makeRepositories(db, changes, routeHistory) as StoreTx;
}

function makeRepositories(db: Db, changes: Changes | undefined, routeHistory: number): StoreTx {
  const mutable = (): Changes => {
    if (!changes) throw new Error('a write outside a transaction: use store.transaction()');
    return changes;
  };
  const routeRevision = async (): Promise<number> => Number((await one(db, "SELECT value FROM meta WHERE key = 'route_revision'", []))?.value ?? 0);
  const bumpRouteRevision = async (): Promise<number> => {
    const revision = Number((await one(db, "UPDATE meta SET value = value + 1 WHERE key = 'route_revision' RETURNING value", []))?.value);
    // Prune in steps of a tenth of the window so pruning is rare and cheap.
    if (revision % Math.max(1, Math.floor(routeHistory / 10)) === 0)
      await db.query('DELETE FROM route_changes WHERE revision <= $1', [revision - routeHistory]);
    return revision;
  };
  const getRoute = async (tenantId: string): Promise<RouteRecord | undefined> => {
    const r = await one(db, 'SELECT * FROM routes WHERE tenant_id = $1', [tenantId]);
    return r ? routeFromRow(r) : undefined;
  };
  const getCa = async () => {
    const r = await one(db, 'SELECT * FROM fleet_ca WHERE id = 1', []);
    return r ? { certPem: String(r.cert_pem), keySealed: String(r.key_sealed), createdAt: Number(r.created_at) } : undefined;
  };
  const getFleetSecret = async (name: string) => {
    const r = await one(db, 'SELECT * FROM fleet_secrets WHERE name = $1', [name]);
    return r ? { name: String(r.name), keyId: String(r.key_id), sealed: String(r.sealed), createdAt: Number(r.created_at) } : undefined;
  };

  const tenants: StoreTx['tenants'] = {
    get: async (id) => {
      const r = await one(db, 'SELECT * FROM tenants WHERE id = $1', [id]);
      return r ? tenantFromRow(r) : undefined;
    },
    getMany: async (ids) => (await db.query('SELECT * FROM tenants WHERE id = ANY($1::text[]) ORDER BY id', [ids])).rows.map(tenantFromRow),
    list: async (filter = {}, page: TenantPage = {}) => {
      const params: unknown[] = [];
      const clauses = tenantWhere(filter, params);
      if (page.after !== undefined) {
        params.push(page.after);
        clauses.push(`id > $${params.length}`);
      }
      let sql = `SELECT * FROM tenants${where(clauses)} ORDER BY id`;
      if (page.limit !== undefined) {
        params.push(Math.max(0, Math.floor(page.limit)));
        sql += ` LIMIT $${params.length}`;
      }
      return (await db.query(sql, params)).rows.map(tenantFromRow);
    },
    count: async (filter = {}) => {
      const params: unknown[] = [];
      const clauses = tenantWhere(filter, params);
      return Number((await one(db, `SELECT COUNT(*) AS n FROM tenants${where(clauses)}`, params))?.n ?? 0);
    },
    countByStatus: () => counts(db, 'SELECT status, COUNT(*) AS n FROM tenants GROUP BY status'),
    listWaiting: async (limit, after = { createdAt: -1, id: '' }) =>
      (
        await db.query(
          `SELECT * FROM tenants t WHERE t.status = 'NEW' AND NOT t.deleting AND (t.created_at, t.id) > ($1, $2)
             AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.tenant_id = t.id) ORDER BY t.created_at, t.id LIMIT $3`,
          [after.createdAt, after.id, limit],
        )
      ).rows.map(tenantFromRow),
    listReplicated: async () => (await db.query(`SELECT * FROM tenants WHERE (spec ->> 'nodes')::int >= 2 ORDER BY id`)).rows.map(tenantFromRow),
    listIdleSuspend: async () =>
      (await db.query(`SELECT * FROM tenants WHERE (spec ->> 'idleSuspendSeconds')::numeric > 0 AND status = 'ACTIVE' ORDER BY id`)).rows.map(tenantFromRow),
    insert: async (t) => {
      mutable();
      await insertOnce(
        db,
        'INSERT INTO tenants (id, spec, revision, instance_revision, status, status_reason, deleting, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [t.id, JSON.stringify(t.spec), t.revision, t.instanceRevision, t.status, t.statusReason, t.deleting, t.createdAt, t.updatedAt],
        `tenant "${t.id}"`,
      );
    },
    insertMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      await insertAll(
        db,
        `INSERT INTO tenants (id, spec, revision, instance_revision, status, status_reason, deleting, created_at, updated_at)
         SELECT id, spec::jsonb, revision, instance_revision, status, status_reason, deleting, created_at, updated_at
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::boolean[], $8::bigint[], $9::bigint[])
             AS t(id, spec, revision, instance_revision, status, status_reason, deleting, created_at, updated_at)
         ON CONFLICT DO NOTHING RETURNING id`,
        [
          list.map((t) => t.id),
          list.map((t) => JSON.stringify(t.spec)),
          list.map((t) => t.revision),
          list.map((t) => t.instanceRevision),
          list.map((t) => t.status),
          list.map((t) => t.statusReason),
          list.map((t) => t.deleting),
          list.map((t) => t.createdAt),
          list.map((t) => t.updatedAt),
        ],
        list.length,
        (rows) => db.query('DELETE FROM tenants WHERE id = ANY($1::text[])', [rows.map((x) => String(x.id))]),
        'a tenant id',
      );
    },
    update: async (t) => {
      mutable();
      await db.query(
        'UPDATE tenants SET spec = $2, revision = $3, instance_revision = $4, status = $5, status_reason = $6, deleting = $7, updated_at = $8 WHERE id = $1',
        [t.id, JSON.stringify(t.spec), t.revision, t.instanceRevision, t.status, t.statusReason, t.deleting, t.updatedAt],
      );
    },
    updateMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      if (new Set(list.map((t) => t.id)).size !== list.length) throw new Error('tenants.updateMany was given a tenant twice');
      // One statement for the batch: each column an array, unnested into rows.
      await db.query(
        `UPDATE tenants t SET spec = u.spec::jsonb, revision = u.revision, instance_revision = u.instance_revision, status = u.status,
           status_reason = u.status_reason, deleting = u.deleting, updated_at = u.updated_at
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::boolean[], $8::bigint[])
           AS u(id, spec, revision, instance_revision, status, status_reason, deleting, updated_at)
         WHERE t.id = u.id`,
        [
          list.map((t) => t.id),
          list.map((t) => JSON.stringify(t.spec)),
          list.map((t) => t.revision),
          list.map((t) => t.instanceRevision),
          list.map((t) => t.status),
          list.map((t) => t.statusReason),
          list.map((t) => t.deleting),
          list.map((t) => t.updatedAt),
        ],
      );
    },
    delete: async (id) => {
      const c = mutable();
      // Databases reference users; drop them first so the deferred key never sees an orphan.
      await db.query('DELETE FROM databases WHERE tenant_id = $1', [id]);
      const gone = await db.query('DELETE FROM placements WHERE tenant_id = $1 RETURNING host_id', [id]);
      for (const r of gone.rows) c.placementHosts.add(String(r.host_id));
      const t = await db.query('DELETE FROM tenants WHERE id = $1', [id]);
      if (t.rowCount > 0 || gone.rowCount > 0) c.roomFreed = true;
    },
  };

  const placements: StoreTx['placements'] = {
    list: async (filter = {}) => {
      if (filter.tenantId !== undefined && filter.hostId !== undefined) {
        return (await db.query('SELECT * FROM placements WHERE tenant_id = $1 AND host_id = $2', [filter.tenantId, filter.hostId])).rows.map(placementFromRow);
      }
      if (filter.tenantId !== undefined)
        return (await db.query('SELECT * FROM placements WHERE tenant_id = $1 ORDER BY role, host_id', [filter.tenantId])).rows.map(placementFromRow);
      if (filter.hostId !== undefined)
        return (await db.query('SELECT * FROM placements WHERE host_id = $1 ORDER BY tenant_id', [filter.hostId])).rows.map(placementFromRow);
      return (await db.query('SELECT * FROM placements ORDER BY tenant_id, role, host_id')).rows.map(placementFromRow);
    },
    listOfTenants: async (ids) =>
      (await db.query('SELECT * FROM placements WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id, role, host_id', [ids])).rows.map(placementFromRow),
    listRetriesDue: async (now) =>
      (await db.query(`SELECT * FROM placements WHERE realization = 'FAILED' AND next_retry_at > 0 AND next_retry_at <= $1`, [now])).rows.map(placementFromRow),
    allocationOf: async (hostId) => {
      // The same sums as allocations(), over one host's placements (by placements_host).
      const r = (
        await db.query(
          `SELECT COUNT(*) AS instances,
             SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE (t.spec #>> '{resources,cpuMillis}')::bigint END) AS cpu,
             SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE (t.spec #>> '{resources,memoryMib}')::bigint END) AS memory,
             SUM((t.spec #>> '{resources,diskMib}')::bigint) AS disk
           FROM (SELECT tenant_id FROM placements WHERE host_id = $1 UNION ALL SELECT tenant_id FROM upgrades WHERE other_host_id = $1) p
           JOIN tenants t ON t.id = p.tenant_id`,
          [hostId],
        )
      ).rows[0];
      return { cpuMillis: Number(r?.cpu ?? 0), memoryMib: Number(r?.memory ?? 0), diskMib: Number(r?.disk ?? 0), instances: Number(r?.instances ?? 0) };
    },
    allocations: async () => {
      // Summed in SQL: reading every tenant's spec into JavaScript costs seconds at 100,000 tenants.
      // A suspended tenant keeps its disk but gives its CPU and memory back for over-commit. A major
      // upgrade's other instance counts on its host too while both instances exist.
      const rows = (
        await db.query(
          `SELECT p.host_id, COUNT(*) AS instances,
             SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE (t.spec #>> '{resources,cpuMillis}')::bigint END) AS cpu,
             SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE (t.spec #>> '{resources,memoryMib}')::bigint END) AS memory,
             SUM((t.spec #>> '{resources,diskMib}')::bigint) AS disk
           FROM (SELECT tenant_id, host_id FROM placements UNION ALL SELECT tenant_id, other_host_id FROM upgrades) p
           JOIN tenants t ON t.id = p.tenant_id GROUP BY p.host_id`,
        )
      ).rows;
      return new Map<string, HostAllocation>(
        rows.map((r) => [
          String(r.host_id),
          { cpuMillis: Number(r.cpu ?? 0), memoryMib: Number(r.memory ?? 0), diskMib: Number(r.disk ?? 0), instances: Number(r.instances) },
        ]),
      );
    },
    creating: async () => {
      const rows = (await db.query('SELECT host_id, COUNT(*) AS creating FROM placements WHERE NOT realized_once GROUP BY host_id')).rows;
      return new Map(rows.map((r) => [String(r.host_id), Number(r.creating)]));
    },
    insert: async (p) => {
      const c = mutable();
      await insertOnce(
        db,
        `INSERT INTO placements (tenant_id, host_id, role, realization, reason, instance_state, address, port, realized_revision, realized_once, failures, next_retry_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          p.tenantId,
          p.hostId,
          p.role,
          p.realization,
          p.reason,
          p.instanceState,
          p.address,
          p.port,
          p.realizedRevision,
          p.realizedOnce,
          p.failures,
          p.nextRetryAt,
          p.updatedAt,
        ],
        `a ${p.role} placement of tenant "${p.tenantId}" on host "${p.hostId}"`,
      );
      c.placementHosts.add(p.hostId);
    },
    insertMany: async (list) => {
      const c = mutable();
      if (list.length === 0) return;
      // One statement; a row that conflicts is skipped (ON CONFLICT DO NOTHING keeps the transaction
      // usable, as insert does), and then the rows this statement did insert are taken out again so
      // the batch leaves nothing: all or nothing, at one extra round trip only when it fails.
      const r = await db.query(
        `INSERT INTO placements (tenant_id, host_id, role, realization, reason, instance_state, address, port, realized_revision, realized_once, failures, next_retry_at, updated_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::integer[], $9::bigint[], $10::boolean[],
           $11::integer[], $12::bigint[], $13::bigint[])
         ON CONFLICT DO NOTHING RETURNING tenant_id, host_id`,
        placementColumns(list),
      );
      if (r.rowCount < list.length) {
        await db.query(
          'DELETE FROM placements p USING unnest($1::text[], $2::text[]) AS d(tenant_id, host_id) WHERE p.tenant_id = d.tenant_id AND p.host_id = d.host_id',
          [r.rows.map((x) => String(x.tenant_id)), r.rows.map((x) => String(x.host_id))],
        );
        const taken = new Set(r.rows.map((x) => `${String(x.tenant_id)}\0${String(x.host_id)}`));
        const refused = list.find((p) => !taken.has(`${p.tenantId}\0${p.hostId}`)) ?? list[0];
        throw new StoreConflictError(
          `a ${refused?.role ?? ''} placement of tenant "${refused?.tenantId ?? ''}" on host "${refused?.hostId ?? ''}" conflicts with a stored one or another of its batch; none of the batch was written`,
        );
      }
      for (const p of list) c.placementHosts.add(p.hostId);
    },
    update: async (p) => {
      mutable();
      await db.query(
        `UPDATE placements SET role = $3, realization = $4, reason = $5, instance_state = $6, address = $7, port = $8, realized_revision = $9,
           realized_once = $10, failures = $11, next_retry_at = $12, updated_at = $13 WHERE tenant_id = $1 AND host_id = $2`,
        [
          p.tenantId,
          p.hostId,
          p.role,
          p.realization,
          p.reason,
          p.instanceState,
          p.address,
          p.port,
          p.realizedRevision,
          p.realizedOnce,
          p.failures,
          p.nextRetryAt,
          p.updatedAt,
        ],
      );
    },
    updateMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      if (new Set(list.map((p) => `${p.tenantId}\0${p.hostId}`)).size !== list.length) throw new Error('placements.updateMany was given a tenant twice');
      await db.query(
        `UPDATE placements p SET role = u.role, realization = u.realization, reason = u.reason, instance_state = u.instance_state, address = u.address, port = u.port,
           realized_revision = u.realized_revision, realized_once = u.realized_once, failures = u.failures, next_retry_at = u.next_retry_at, updated_at = u.updated_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::integer[], $9::bigint[], $10::boolean[],
           $11::integer[], $12::bigint[], $13::bigint[])
           AS u(tenant_id, host_id, role, realization, reason, instance_state, address, port, realized_revision, realized_once, failures, next_retry_at, updated_at)
         WHERE p.tenant_id = u.tenant_id AND p.host_id = u.host_id`,
        placementColumns(list),
      );
    },
    delete: async (tenantId, hostId) => {
      const c = mutable();
      const r = await db.query('DELETE FROM placements WHERE tenant_id = $1 AND host_id = $2', [tenantId, hostId]);
      if (r.rowCount > 0) {
        c.placementHosts.add(hostId);
        c.roomFreed = true;
      }
    },
  };

  const hosts: StoreTx['hosts'] = {
    get: async (id) => {
      const r = await one(db, 'SELECT * FROM hosts WHERE id = $1', [id]);
      return r ? hostFromRow(r) : undefined;
    },
    getMany: async (ids) => (await db.query('SELECT * FROM hosts WHERE id = ANY($1::text[]) ORDER BY id', [ids])).rows.map(hostFromRow),
    list: async () => (await db.query('SELECT * FROM hosts ORDER BY id')).rows.map(hostFromRow),
    put: async (h) => {
      mutable();
      await db.query(
        `INSERT INTO hosts (id, address, state, cordoned, draining, cpu_millis, memory_mib, disk_mib, labels, runtime, agent_version, last_heartbeat_at, registered_at, state_changed_at, generation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state, cordoned = excluded.cordoned, draining = excluded.draining,
           cpu_millis = excluded.cpu_millis, memory_mib = excluded.memory_mib, disk_mib = excluded.disk_mib, labels = excluded.labels, runtime = excluded.runtime,
           agent_version = excluded.agent_version, last_heartbeat_at = excluded.last_heartbeat_at, registered_at = excluded.registered_at,
           state_changed_at = excluded.state_changed_at, generation = GREATEST(hosts.generation, excluded.generation)`,
        [
          h.id,
          h.address,
          h.state,
          h.cordoned,
          h.draining,
          h.capacity.cpuMillis,
          h.capacity.memoryMib,
          h.capacity.diskMib,
          JSON.stringify(h.labels),
          h.runtime,
          h.agentVersion,
          h.lastHeartbeatAt,
          h.registeredAt,
          h.stateChangedAt,
          h.generation,
        ],
      );
    },
    nextGeneration: async (hostId) => {
      mutable();
      const r = await one(db, 'UPDATE hosts SET generation = generation + 1 WHERE id = $1 RETURNING generation', [hostId]);
      if (!r) throw new StoreNotFoundError(`host "${hostId}" is not registered`);
      return Number(r.generation);
    },
    desiredSent: async (hostId) => {
      const r = await one(db, 'SELECT generation, digest FROM host_desired_sent WHERE host_id = $1', [hostId]);
      return r ? { generation: Number(r.generation), digest: String(r.digest) } : undefined;
    },
    noteDesiredSent: async (hostId, sent) => {
      mutable();
      if (!(await one(db, 'SELECT 1 FROM hosts WHERE id = $1', [hostId]))) throw new StoreNotFoundError(`host "${hostId}" is not registered`);
      await db.query(
        `INSERT INTO host_desired_sent (host_id, generation, digest) VALUES ($1, $2, $3)
         ON CONFLICT (host_id) DO UPDATE SET generation = excluded.generation, digest = excluded.digest`,
        [hostId, sent.generation, sent.digest],
      );
    },
  };

  const users: StoreTx['users'] = {
    get: async (tenantId, name) => {
      const r = await one(db, 'SELECT * FROM users WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
      return r ? userFromRow(r) : undefined;
    },
    list: async (tenantId) => (await db.query('SELECT * FROM users WHERE tenant_id = $1 ORDER BY owner DESC, name', [tenantId])).rows.map(userFromRow),
    listOfTenants: async (ids) =>
      (await db.query('SELECT * FROM users WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id, owner DESC, name', [ids])).rows.map(userFromRow),
    insert: async (u) => {
      mutable();
      await insertOnce(
        db,
        'INSERT INTO users (tenant_id, name, description, scram_verifier, owner, status, status_reason, revision, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [u.tenantId, u.name, u.description, u.scramVerifier, u.owner, u.status, u.statusReason, u.revision, u.createdAt],
        `user "${u.name}" of tenant "${u.tenantId}"`,
      );
    },
    insertMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      await insertAll(
        db,
        `INSERT INTO users (tenant_id, name, description, scram_verifier, owner, status, status_reason, revision, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
         ON CONFLICT DO NOTHING RETURNING tenant_id, name`,
        [
          list.map((u) => u.tenantId),
          list.map((u) => u.name),
          list.map((u) => u.description),
          list.map((u) => u.scramVerifier),
          list.map((u) => u.owner),
          list.map((u) => u.status),
          list.map((u) => u.statusReason),
          list.map((u) => u.revision),
          list.map((u) => u.createdAt),
        ],
        list.length,
        (rows) =>
          db.query('DELETE FROM users u USING unnest($1::text[], $2::text[]) AS d(tenant_id, name) WHERE u.tenant_id = d.tenant_id AND u.name = d.name', [
            rows.map((x) => String(x.tenant_id)),
            rows.map((x) => String(x.name)),
          ]),
        'a user name',
      );
    },
    update: async (u) => {
      mutable();
      await db.query(
        'UPDATE users SET description = $3, scram_verifier = $4, owner = $5, status = $6, status_reason = $7, revision = $8 WHERE tenant_id = $1 AND name = $2',
        [u.tenantId, u.name, u.description, u.scramVerifier, u.owner, u.status, u.statusReason, u.revision],
      );
    },
    delete: async (tenantId, name) => {
      mutable();
      await db.query('DELETE FROM users WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
    },
  };

  const databases: StoreTx['databases'] = {
    get: async (tenantId, name) => {
      const r = await one(db, 'SELECT * FROM databases WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
      return r ? databaseFromRow(r) : undefined;
    },
    list: async (tenantId) => (await db.query('SELECT * FROM databases WHERE tenant_id = $1 ORDER BY name', [tenantId])).rows.map(databaseFromRow),
    listOfTenants: async (ids) =>
      (await db.query('SELECT * FROM databases WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id, name', [ids])).rows.map(databaseFromRow),
    insert: async (d) => {
      mutable();
      await db.query(
        'INSERT INTO databases (tenant_id, name, owner, description, status, status_reason, revision, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [d.tenantId, d.name, d.owner, d.description, d.status, d.statusReason, d.revision, d.createdAt],
      );
    },
    insertMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      await insertAll(
        db,
        `INSERT INTO databases (tenant_id, name, owner, description, status, status_reason, revision, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
         ON CONFLICT DO NOTHING RETURNING tenant_id, name`,
        [
          list.map((d) => d.tenantId),
          list.map((d) => d.name),
          list.map((d) => d.owner),
          list.map((d) => d.description),
          list.map((d) => d.status),
          list.map((d) => d.statusReason),
          list.map((d) => d.revision),
          list.map((d) => d.createdAt),
        ],
        list.length,
        (rows) =>
          db.query('DELETE FROM databases x USING unnest($1::text[], $2::text[]) AS d(tenant_id, name) WHERE x.tenant_id = d.tenant_id AND x.name = d.name', [
            rows.map((x) => String(x.tenant_id)),
            rows.map((x) => String(x.name)),
          ]),
        'a database name',
      );
    },
    update: async (d) => {
      mutable();
      await db.query('UPDATE databases SET owner = $3, description = $4, status = $5, status_reason = $6, revision = $7 WHERE tenant_id = $1 AND name = $2', [
        d.tenantId,
        d.name,
        d.owner,
        d.description,
        d.status,
        d.statusReason,
        d.revision,
      ]);
    },
    delete: async (tenantId, name) => {
      mutable();
      await db.query('DELETE FROM databases WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
    },
  };

  const getRoutes = async (ids: readonly string[]): Promise<RouteRecord[]> =>
    (await db.query('SELECT * FROM routes WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id', [ids])).rows.map(routeFromRow);
  const routes: StoreTx['routes'] = {
    get: getRoute,
    getMany: getRoutes,
    list: async () => (await db.query('SELECT * FROM routes ORDER BY tenant_id')).rows.map(routeFromRow),
    listAfter: async (tenantId, limit) =>
      (await db.query('SELECT * FROM routes WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2', [tenantId, limit])).rows.map(routeFromRow),
    revision: routeRevision,
    changesSince: async (revision, limit) => {
      const current = await routeRevision();
      if (revision > current) return undefined;
      if (revision === current) return [];
      const oldest = (await one(db, 'SELECT MIN(revision) AS v FROM route_changes', []))?.v;
      // The history must hold revision + 1 onwards; otherwise the gap forces a snapshot.
      if (oldest === null || oldest === undefined || Number(oldest) > revision + 1) return undefined;
      // LIMIT NULL: no limit.
      return (await db.query('SELECT * FROM route_changes WHERE revision > $1 ORDER BY revision LIMIT $2', [revision, limit ?? null])).rows.map((r) => ({
        revision: Number(r.revision),
        tenantId: String(r.tenant_id),
        route: r.route === null ? undefined : (JSON.parse(String(r.route)) as RouteRecord),
      }));
    },
    put: async (route) => {
      const c = mutable();
      const existing = await getRoute(route.tenantId);
      if (existing && sameRoute(existing, route)) return existing;
      const revision = await bumpRouteRevision();
      const stored: RouteRecord = { ...route, revision };
      await db.query(
        `INSERT INTO routes (tenant_id, host_id, address, port, state, reason, external_access, connection_limit, revision, pool_mode, users)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (tenant_id) DO UPDATE SET host_id = excluded.host_id, address = excluded.address, port = excluded.port, state = excluded.state,
           reason = excluded.reason, external_access = excluded.external_access, connection_limit = excluded.connection_limit, revision = excluded.revision,
           pool_mode = excluded.pool_mode, users = excluded.users`,
        [
          stored.tenantId,
          stored.hostId,
          stored.address,
          stored.port,
          stored.state,
          stored.reason,
          stored.externalAccess,
          stored.connectionLimit,
          revision,
          stored.poolMode,
          JSON.stringify(stored.users),
        ],
      );
      await db.query('INSERT INTO route_changes (revision, tenant_id, route) VALUES ($1, $2, $3)', [revision, route.tenantId, JSON.stringify(stored)]);
      c.routeChanges.push({ revision, tenantId: route.tenantId, route: stored });
      return stored;
    },
    putMany: async (list) => {
      const c = mutable();
      if (list.length === 0) return [];
      if (new Set(list.map((r) => r.tenantId)).size !== list.length) throw new Error('routes.putMany was given a tenant twice');
      const existing = new Map((await getRoutes(list.map((r) => r.tenantId))).map((r) => [r.tenantId, r]));
      const changed = list.filter((r) => {
        const old = existing.get(r.tenantId);
        return !old || !sameRoute(old, r);
      });
      if (changed.length === 0) return list.map((r) => existing.get(r.tenantId) as RouteRecord);
      // The revisions of the batch in one step: they follow each other in the order given.
      const last = Number((await one(db, "UPDATE meta SET value = value + $1 WHERE key = 'route_revision' RETURNING value", [changed.length]))?.value);
      const first = last - changed.length + 1;
      const stored = changed.map((r, i): RouteRecord => ({ ...r, revision: first + i }));
      const step = Math.max(1, Math.floor(routeHistory / 10));
      // Pruned as put does, when the batch passed a step of a tenth of the window.
      if (Math.floor(last / step) > Math.floor((first - 1) / step)) await db.query('DELETE FROM route_changes WHERE revision <= $1', [last - routeHistory]);
      await db.query(
        `INSERT INTO routes (tenant_id, host_id, address, port, state, reason, external_access, connection_limit, revision, pool_mode, users)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::boolean[], $8::integer[], $9::bigint[], $10::text[], $11::text[])
         ON CONFLICT (tenant_id) DO UPDATE SET host_id = excluded.host_id, address = excluded.address, port = excluded.port, state = excluded.state,
           reason = excluded.reason, external_access = excluded.external_access, connection_limit = excluded.connection_limit, revision = excluded.revision,
           pool_mode = excluded.pool_mode, users = excluded.users`,
        [
          stored.map((r) => r.tenantId),
          stored.map((r) => r.hostId),
          stored.map((r) => r.address),
          stored.map((r) => r.port),
          stored.map((r) => r.state),
          stored.map((r) => r.reason),
          stored.map((r) => r.externalAccess),
          stored.map((r) => r.connectionLimit),
          stored.map((r) => r.revision),
          stored.map((r) => r.poolMode),
          stored.map((r) => JSON.stringify(r.users)),
        ],
      );
      await db.query('INSERT INTO route_changes (revision, tenant_id, route) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])', [
        stored.map((r) => r.revision),
        stored.map((r) => r.tenantId),
        stored.map((r) => JSON.stringify(r)),
      ]);
      for (const r of stored) {
        c.routeChanges.push({ revision: r.revision, tenantId: r.tenantId, route: r });
        existing.set(r.tenantId, r);
      }
      return list.map((r) => existing.get(r.tenantId) as RouteRecord);
    },
    delete: async (tenantId) => {
      const c = mutable();
      if (!(await getRoute(tenantId))) return;
      const revision = await bumpRouteRevision();
      await db.query('DELETE FROM routes WHERE tenant_id = $1', [tenantId]);
      await db.query('INSERT INTO route_changes (revision, tenant_id, route) VALUES ($1, $2, NULL)', [revision, tenantId]);
      c.routeChanges.push({ revision, tenantId, route: undefined });
    },
  };

  const events: StoreTx['events'] = {
    list: async (filter: EventFilter) => {
      const params: unknown[] = [];
      const clauses: string[] = [];
      const p = (v: unknown): string => {
        params.push(v);
        return `$${params.length}`;
      };
      if (filter.tenantId) clauses.push(`tenant_id = ${p(filter.tenantId)}`);
      if (filter.hostId) clauses.push(`host_id = ${p(filter.hostId)}`);
      if (filter.outcome) clauses.push(`outcome = ${p(filter.outcome)}`);
      const after = filter.afterId ?? 0;
      if (after > 0) clauses.push(`id > ${p(Math.floor(after))}`);
      const limit = p(Math.floor(filter.limit));
      // After an id: the next `limit` in order. Without one: the newest `limit`, returned oldest first.
      const sql =
        after > 0
          ? `SELECT * FROM events${where(clauses)} ORDER BY id ASC LIMIT ${limit}`
          : `SELECT * FROM (SELECT * FROM events${where(clauses)} ORDER BY id DESC LIMIT ${limit}) e ORDER BY id ASC`;
      return (await db.query(sql, params)).rows.map(eventFromRow);
    },
    append: async (event: NewEvent) => {
      const c = mutable();
      const record: Omit<EventRecord, 'id'> = { tenantId: '', hostId: '', outcome: 'SUCCESS', ...event, details: event.details ?? {} };
      const r = await one(
        db,
        'INSERT INTO events (time, principal, action, tenant_id, host_id, outcome, message, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id',
        [record.time, record.principal, record.action, record.tenantId, record.hostId, record.outcome, record.message, JSON.stringify(record.details)],
      );
      const stored: EventRecord = { id: Number(r?.id), ...record };
      c.events.push(stored);
      return stored;
    },
    appendMany: async (list) => {
      const c = mutable();
      if (list.length === 0) return [];
      const records = list.map((event): Omit<EventRecord, 'id'> => ({ tenantId: '', hostId: '', outcome: 'SUCCESS', ...event, details: event.details ?? {} }));
      // Rows are inserted (and take their ids) in the order of the ordered select; the ids come back
      // in any order, so they are sorted and given to the events in the order they were passed.
      const r = await db.query(
        `INSERT INTO events (time, principal, action, tenant_id, host_id, outcome, message, details)
         SELECT time, principal, action, tenant_id, host_id, outcome, message, details
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             WITH ORDINALITY AS e(time, principal, action, tenant_id, host_id, outcome, message, details, n)
           ORDER BY n RETURNING id`,
        [
          records.map((e) => e.time),
          records.map((e) => e.principal),
          records.map((e) => e.action),
          records.map((e) => e.tenantId),
          records.map((e) => e.hostId),
          records.map((e) => e.outcome),
          records.map((e) => e.message),
          records.map((e) => JSON.stringify(e.details)),
        ],
      );
      const ids = r.rows.map((x) => Number(x.id)).sort((a, b) => a - b);
      const stored = records.map((e, i): EventRecord => ({ id: ids[i] as number, ...e }));
      c.events.push(...stored);
      return stored;
    },
  };

  const idempotency: StoreTx['idempotency'] = {
    get: async (scope, key) => {
      const r = await one(db, 'SELECT * FROM idempotency WHERE scope = $1 AND key = $2', [scope, key]);
      return r ? { requestHash: String(r.request_hash), response: String(r.response), createdAt: Number(r.created_at) } : undefined;
    },
    getMany: async (scope, keys) => {
      const rows = (await db.query('SELECT * FROM idempotency WHERE scope = $1 AND key = ANY($2::text[])', [scope, keys])).rows;
      return new Map(rows.map((r) => [String(r.key), { requestHash: String(r.request_hash), response: String(r.response), createdAt: Number(r.created_at) }]));
    },
    put: async (scope, key, rec) => {
      mutable();
      await db.query(
        `INSERT INTO idempotency (scope, key, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at`,
        [scope, key, rec.requestHash, rec.response, rec.createdAt],
      );
    },
    putMany: async (scope, answers) => {
      mutable();
      if (answers.length === 0) return;
      // ON CONFLICT DO UPDATE may not touch one row twice in a statement: a repeated key is refused first.
      once(answers, (a) => a.key, 'idempotency.putMany');
      await db.query(
        `INSERT INTO idempotency (scope, key, request_hash, response, created_at)
         SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[])
         ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at`,
        [
          scope,
          answers.map((a) => a.key),
          answers.map((a) => a.record.requestHash),
          answers.map((a) => a.record.response),
          answers.map((a) => a.record.createdAt),
        ],
      );
    },
  };

  const secrets: StoreTx['secrets'] = {
    getTenantSecret: async (tenantId, name) => {
      const r = await one(db, 'SELECT * FROM tenant_secrets WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
      return r
        ? { tenantId: String(r.tenant_id), name: String(r.name), sealed: String(r.sealed), verifier: String(r.verifier), createdAt: Number(r.created_at) }
        : undefined;
    },
    getFleetSecret,
    getCa,
    insertTenantSecret: async (s) => {
      mutable();
      await db.query('INSERT INTO tenant_secrets (tenant_id, name, sealed, verifier, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
        s.tenantId,
        s.name,
        s.sealed,
        s.verifier,
        s.createdAt,
      ]);
    },
    putFleetSecretOnce: async (s) => {
      mutable();
      await db.query('INSERT INTO fleet_secrets (name, key_id, sealed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
        s.name,
        s.keyId,
        s.sealed,
        s.createdAt,
      ]);
      return (await getFleetSecret(s.name)) ?? s;
    },
    putFleetSecret: async (s) => {
      mutable();
      await db.query(
        'INSERT INTO fleet_secrets (name, key_id, sealed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, created_at = excluded.created_at',
        [s.name, s.keyId, s.sealed, s.createdAt],
      );
    },
    putCaOnce: async (ca) => {
      mutable();
      await db.query('INSERT INTO fleet_ca (id, cert_pem, key_sealed, created_at) VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING', [
        ca.certPem,
        ca.keySealed,
        ca.createdAt,
      ]);
      return (await getCa()) ?? ca;
    },
    resealAll: async (reseal: (sealed: string, where: SealedAt) => string) => {
      mutable();
      let changed = 0;
      const ca = await getCa();
      if (ca) {
        const next = reseal(ca.keySealed, { table: 'fleet_ca' });
        if (next !== ca.keySealed) {
          await db.query('UPDATE fleet_ca SET key_sealed = $1 WHERE id = 1', [next]);
          changed++;
        }
      }
      for (const s of (await db.query('SELECT tenant_id, name, sealed FROM tenant_secrets')).rows) {
        const sealed = String(s.sealed);
        const next = reseal(sealed, { table: 'tenant_secrets', tenantId: String(s.tenant_id), name: String(s.name) });
        if (next === sealed) continue;
        await db.query('UPDATE tenant_secrets SET sealed = $1 WHERE tenant_id = $2 AND name = $3', [next, s.tenant_id, s.name]);
        changed++;
      }
      for (const s of (await db.query('SELECT name, sealed FROM fleet_secrets')).rows) {
        const sealed = String(s.sealed);
        const next = reseal(sealed, { table: 'fleet_secrets', name: String(s.name) });
        if (next === sealed) continue;
        await db.query('UPDATE fleet_secrets SET sealed = $1 WHERE name = $2', [next, s.name]);
        changed++;
      }
      for (const u of (await db.query("SELECT tenant_id, record->>'sealedPassword' AS sealed FROM upgrades")).rows) {
        const sealed = String(u.sealed ?? '');
        if (sealed === '') continue;
        const next = reseal(sealed, { table: 'upgrades', tenantId: String(u.tenant_id) });
        if (next === sealed) continue;
        await db.query("UPDATE upgrades SET record = jsonb_set(record, '{sealedPassword}', to_jsonb($1::text)) WHERE tenant_id = $2", [next, u.tenant_id]);
        changed++;
      }
      return changed;
    },
  };

  const tokens: StoreTx['tokens'] = {
    find: async (hash) => {
      const r = await one(db, 'SELECT * FROM tokens WHERE hash = $1', [hash]);
      return r ? tokenFromRow(r) : undefined;
    },
    findOperator: async (name) => {
      const r = await one(db, "SELECT * FROM tokens WHERE kind = 'operator' AND name = $1 AND revoked_at IS NULL", [name]);
      return r ? tokenFromRow(r) : undefined;
    },
    listOperators: async (includeRevoked) =>
      (
        await db.query(`SELECT * FROM tokens WHERE kind = 'operator'${includeRevoked ? '' : ' AND revoked_at IS NULL'} ORDER BY created_at DESC, name`)
      ).rows.map(tokenFromRow),
    insert: async (record: TokenRecord, createdBy: string) => {
      mutable();
      await insertOnce(
        db,
        'INSERT INTO tokens (hash, kind, name, role, tenant_ids, created_at, expires_at, single_use, used_at, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)',
        [
          record.hash,
          record.kind,
          record.name,
          record.role ?? null,
          JSON.stringify(record.tenantIds),
          record.createdAtMs,
          record.expiresAtMs,
          record.singleUse,
          createdBy,
        ],
        record.kind === 'operator' ? `a live operator token named "${record.name}"` : 'the token',
      );
    },
    markUsed: async (hash, at) => {
      mutable();
      return (await db.query('UPDATE tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL', [at, hash])).rowCount === 1;
    },
    revokeOperator: async (name, at) => {
      mutable();
      return (await db.query("UPDATE tokens SET revoked_at = $1 WHERE kind = 'operator' AND name = $2 AND revoked_at IS NULL", [at, name])).rowCount === 1;
    },
  };

  const backupCols = BACKUP_COLUMNS.join(', ');
  const backups: StoreTx['backups'] = {
    getStanza: async (tenantId) => {
      const r = await one(db, 'SELECT * FROM tenant_stanzas WHERE tenant_id = $1', [tenantId]);
      return r ? stanzaFromRow(r) : undefined;
    },
    getStanzaMany: async (tenantIds) =>
      (await db.query('SELECT * FROM tenant_stanzas WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id', [tenantIds])).rows.map(stanzaFromRow),
    get: async (tenantId, id) => {
      const r = await one(db, 'SELECT * FROM backups WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
      return r ? backupFromRow(r) : undefined;
    },
    list: async (tenantId) => (await db.query('SELECT * FROM backups WHERE tenant_id = $1 ORDER BY started_at, id', [tenantId])).rows.map(backupFromRow),
    listRunning: async () => (await db.query(`SELECT * FROM backups WHERE status = 'RUNNING' ORDER BY started_at`)).rows.map(backupFromRow),
    countByStatus: () => counts(db, 'SELECT status, COUNT(*) AS n FROM backups GROUP BY status'),
    putStanza: async (s) => {
      mutable();
      await db.query(
        `INSERT INTO tenant_stanzas (tenant_id, stanza, last_archived_at, last_archived_wal, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE SET stanza = excluded.stanza, last_archived_at = excluded.last_archived_at, last_archived_wal = excluded.last_archived_wal, created_at = excluded.created_at`,
        [s.tenantId, s.stanza, s.archivedThrough, s.lastArchivedWal, s.createdAt],
      );
    },
    putStanzaMany: async (list) => {
      mutable();
      if (list.length === 0) return;
      once(list, (s) => s.tenantId, 'backups.putStanzaMany');
      await db.query(
        `INSERT INTO tenant_stanzas (tenant_id, stanza, last_archived_at, last_archived_wal, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
         ON CONFLICT (tenant_id) DO UPDATE SET stanza = excluded.stanza, last_archived_at = excluded.last_archived_at, last_archived_wal = excluded.last_archived_wal, created_at = excluded.created_at`,
        [
          list.map((s) => s.tenantId),
          list.map((s) => s.stanza),
          list.map((s) => s.archivedThrough),
          list.map((s) => s.lastArchivedWal),
          list.map((s) => s.createdAt),
        ],
      );
    },
    insert: async (b) => {
      mutable();
      await insertOnce(
        db,
        `INSERT INTO backups (${backupCols}) VALUES (${placeholders(BACKUP_COLUMNS.length)})`,
        backupValues(b),
        `backup "${b.id}" (or a second running backup of tenant "${b.tenantId}")`,
      );
    },
    update: async (b) => {
      mutable();
      await db.query(`UPDATE backups SET (${backupCols}) = ROW(${placeholders(BACKUP_COLUMNS.length)}) WHERE id = $1`, backupValues(b));
    },
  };

  const restoreCols = RESTORE_COLUMNS.join(', ');
  const restores: StoreTx['restores'] = {
    get: async (id) => {
      const r = await one(db, 'SELECT * FROM restores WHERE id = $1', [id]);
      return r ? restoreFromRow(r) : undefined;
    },
    list: async (targetTenantId) =>
      (await db.query('SELECT * FROM restores WHERE target_tenant_id = $1 ORDER BY started_at, id', [targetTenantId])).rows.map(restoreFromRow),
    listRunning: async () => (await db.query(`SELECT * FROM restores WHERE state = 'RUNNING' ORDER BY started_at`)).rows.map(restoreFromRow),
    listActive: async () => (await db.query(`SELECT * FROM restores WHERE phase <> 'done' ORDER BY started_at`)).rows.map(restoreFromRow),
    listOfTargets: async (ids) =>
      (await db.query('SELECT * FROM restores WHERE target_tenant_id = ANY($1::text[]) ORDER BY target_tenant_id, started_at, id', [ids])).rows.map(
        restoreFromRow,
      ),
    insert: async (r) => {
      mutable();
      await insertOnce(
        db,
        `INSERT INTO restores (${restoreCols}) VALUES (${placeholders(RESTORE_COLUMNS.length)})`,
        restoreValues(r),
        `restore "${r.id}" (or a second running restore into tenant "${r.targetTenantId}")`,
      );
    },
    update: async (r) => {
      mutable();
      await db.query(`UPDATE restores SET (${restoreCols}) = ROW(${placeholders(RESTORE_COLUMNS.length)}) WHERE id = $1`, restoreValues(r));
    },
  };

  const operationCols = OPERATION_COLUMNS.join(', ');
  const operations: StoreTx['operations'] = {
    get: async (tenantId) => {
      const r = await one(db, 'SELECT * FROM operations WHERE tenant_id = $1', [tenantId]);
      return r ? operationFromRow(r) : undefined;
    },
    list: async () => (await db.query('SELECT * FROM operations ORDER BY tenant_id')).rows.map(operationFromRow),
    put: async (o) => {
      mutable();
      const updates = OPERATION_COLUMNS.slice(1)
        .map((c) => `${c} = excluded.${c}`)
        .join(', ');
      await db.query(
        `INSERT INTO operations (${operationCols}) VALUES (${placeholders(OPERATION_COLUMNS.length)}) ON CONFLICT (tenant_id) DO UPDATE SET ${updates}`,
        operationValues(o),
      );
    },
    delete: async (tenantId) => {
      mutable();
      await db.query('DELETE FROM operations WHERE tenant_id = $1', [tenantId]);
    },
  };

  // The record is read whole (jsonb comes back parsed); the columns serve the host filter.
  const upgrades: StoreTx['upgrades'] = {
    get: async (tenantId) => (await one(db, 'SELECT record FROM upgrades WHERE tenant_id = $1', [tenantId]))?.record as UpgradeRecord | undefined,
    getMany: async (ids) =>
      (await db.query('SELECT record FROM upgrades WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id', [ids])).rows.map((r) => r.record as UpgradeRecord),
    list: async () => (await db.query('SELECT record FROM upgrades ORDER BY tenant_id')).rows.map((r) => r.record as UpgradeRecord),
    listOnHost: async (hostId) =>
      (await db.query('SELECT record FROM upgrades WHERE other_host_id = $1 ORDER BY tenant_id', [hostId])).rows.map((r) => r.record as UpgradeRecord),
    put: async (u) => {
      mutable();
      await db.query(
        `INSERT INTO upgrades (tenant_id, phase, other_host_id, record, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE SET phase = excluded.phase, other_host_id = excluded.other_host_id, record = excluded.record, updated_at = excluded.updated_at`,
        [u.tenantId, u.phase, u.other.hostId, JSON.stringify(u), u.updatedAt],
      );
    },
    delete: async (tenantId) => {
      mutable();
      await db.query('DELETE FROM upgrades WHERE tenant_id = $1', [tenantId]);
    },
  };

  // Read whole, like an upgrade's.
  const moves: StoreTx['moves'] = {
    get: async (tenantId) => (await one(db, 'SELECT record FROM moves WHERE tenant_id = $1', [tenantId]))?.record as MoveRecord | undefined,
    list: async () => (await db.query('SELECT record FROM moves ORDER BY tenant_id')).rows.map((r) => r.record as MoveRecord),
    put: async (m) => {
      mutable();
      await db.query(
        `INSERT INTO moves (tenant_id, record, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at`,
        [m.tenantId, JSON.stringify(m), m.updatedAt],
      );
    },
    delete: async (tenantId) => {
      mutable();
      await db.query('DELETE FROM moves WHERE tenant_id = $1', [tenantId]);
    },
  };

  const initSql: StoreTx['initSql'] = {
    get: async (tenantId) => {
      const r = await one(db, 'SELECT * FROM tenant_init_sql WHERE tenant_id = $1', [tenantId]);
      return r ? initSqlFromRow(r) : undefined;
    },
    listOpen: async () => (await db.query(`SELECT * FROM tenant_init_sql WHERE state IN ('PENDING', 'RUNNING') ORDER BY tenant_id`)).rows.map(initSqlFromRow),
    put: async (r) => {
      mutable();
      await db.query(
        `INSERT INTO tenant_init_sql (tenant_id, scripts, state, applied, failed_script, error, attempt, after_revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id) DO UPDATE SET scripts = excluded.scripts, state = excluded.state, applied = excluded.applied, failed_script = excluded.failed_script,
           error = excluded.error, attempt = excluded.attempt, after_revision = excluded.after_revision, updated_at = excluded.updated_at`,
        [r.tenantId, JSON.stringify(r.scripts), r.state, r.applied, r.failedScript, r.error, r.attempt, r.afterRevision, r.updatedAt],
      );
    },
  };

  return {
    tenants,
    placements,
    hosts,
    users,
    databases,
    routes,
    events,
    idempotency,
    secrets,
    tokens,
    backups,
    restores,
    operations,
    initSql,
    upgrades,
    moves,
    record: (change: RecordedChange) => {
      const c = mutable();
      if (change.kind === 'desired')
        c.desired.push(change.hostId === undefined ? { tenantId: change.tenantId } : { tenantId: change.tenantId, hostId: change.hostId });
      else if (change.kind === 'room') c.roomFreed = true;
      else c.toPlace.push(change.tenantId);
    },
  };
}

/** Placements as one array per column, in the column order of the batch statements' unnest (13 columns). */
function placementColumns(list: readonly PlacementRecord[]): unknown[][] {
  return [
    list.map((p) => p.tenantId),
    list.map((p) => p.hostId),
    list.map((p) => p.role),
    list.map((p) => p.realization),
    list.map((p) => p.reason),
    list.map((p) => p.instanceState),
    list.map((p) => p.address),
    list.map((p) => p.port),
    list.map((p) => p.realizedRevision),
    list.map((p) => p.realizedOnce),
    list.map((p) => p.failures),
    list.map((p) => p.nextRetryAt),
    list.map((p) => p.updatedAt),
  ];
}
