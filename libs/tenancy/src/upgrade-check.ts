/**
 * Whether a tenant can be upgraded to a newer PostgreSQL major by logical replication, decided
 * before anything starts: every reason it cannot is collected and returned together, so an
 * operator fixes them in one go and nothing is discovered halfway.
 *
 * What logical replication does not carry (PostgreSQL docs, "Logical Replication: Restrictions"):
 * large objects, sequences' values (copied at the switch instead), DDL (the schema is copied once
 * up front), and unlogged tables (they write no WAL, so nothing decodes their rows). A table
 * without a replica identity is published, but its UPDATE and DELETE fail on the source once the
 * publication exists; REPLICA IDENTITY FULL makes them replicate at the cost of whole-row WAL and
 * a scan per row on the subscriber, so it is only set when the operator asks for it.
 */

/** What the source instance holds that matters to logical replication, across its databases. */
export interface UpgradeSourceFacts {
  /** `server_version_num / 10000` of the running source. */
  major: number;
  /** The source's wal_level ('logical' is needed to decode its WAL). */
  walLevel: string;
  /** Large objects per database (only databases with any). */
  largeObjects: ReadonlyArray<{ database: string; count: number }>;
  /** Unlogged tables as "database: schema.table". */
  unloggedTables: readonly string[];
  /** Tables that would lose UPDATE/DELETE: no primary key and identity DEFAULT, or identity NOTHING ("database: schema.table"). */
  tablesWithoutIdentity: readonly string[];
}

/** The request and what the fleet offers for it. */
export interface UpgradeRequestFacts {
  tenantId: string;
  /** The tenant's major now (its spec's version). */
  fromMajor: number;
  toMajor: number;
  /** Tenant status: only an ACTIVE tenant is upgraded. */
  status: string;
  /** Members of the tenant (an upgrade replaces a single instance). */
  members: number;
  /** Hosts able to take the new instance: they run `toMajor`, are connected and have room. */
  targetHosts: readonly string[];
  /**
   * Connected hosts that run `toMajor`, with room or not (the new instance counts on its host
   * beside the old one until the upgrade ends), and why none of them has room when none does.
   */
  runnableHosts?: number;
  noRoomReason?: string;
  /** Why the target major cannot serve the tenant as it is (its backups beyond what pgBackRest knows), if so. */
  targetProblem?: string;
  /** Majors of the pg_dump clients on the source's host (one can read a server of its own major or older). */
  dumpClientMajors: readonly number[];
  /** Another operation (move, failover, upgrade, restore) runs on the tenant. */
  busy: boolean;
  /** The operator asked to set REPLICA IDENTITY FULL on tables without one. */
  replicaIdentityFull: boolean;
  /** Undefined when the source could not be read (it is not running). */
  source: UpgradeSourceFacts | undefined;
}

/** One reason an upgrade cannot start. */
export interface UpgradeRefusal {
  code:
    | 'TENANT_NOT_ACTIVE'
    | 'UPGRADE_BUSY'
    | 'REPLICATED_TENANT'
    | 'TARGET_NOT_NEWER'
    | 'TARGET_NOT_RUNNABLE'
    | 'NO_ROOM'
    | 'TARGET_UNSUPPORTED'
    | 'SOURCE_UNREADABLE'
    | 'NO_DUMP_CLIENT'
    | 'WAL_LEVEL'
    | 'LARGE_OBJECTS'
    | 'UNLOGGED_TABLES'
    | 'NO_REPLICA_IDENTITY'
    | 'NO_PG_UPGRADE';
  message: string;
}

/** The outcome: go (with the tables that get REPLICA IDENTITY FULL, and the dump client to use), or every refusal. */
export type UpgradeCheck = { ok: true; dumpClientMajor: number; setIdentityFull: readonly string[] } | { ok: false; refusals: readonly UpgradeRefusal[] };

const LIST_SHOWN = 10;

function listed(items: readonly string[]): string {
  const shown = items.slice(0, LIST_SHOWN).join(', ');
  return items.length > LIST_SHOWN ? `${shown} and ${items.length - LIST_SHOWN} more` : shown;
}

/** Every reason the upgrade cannot start, or the go with what it will do beyond copying. */
export function checkUpgrade(f: UpgradeRequestFacts): UpgradeCheck {
  const refusals: UpgradeRefusal[] = [];
  const refuse = (code: UpgradeRefusal['code'], message: string): void => void refusals.push({ code, message });
  if (f.busy) refuse('UPGRADE_BUSY', `another operation runs on ${f.tenantId}; wait for it to end`);
  if (f.status !== 'ACTIVE') refuse('TENANT_NOT_ACTIVE', `${f.tenantId} is ${f.status}; only an ACTIVE tenant is upgraded`);
  if (f.members > 1) refuse('REPLICATED_TENANT', `${f.tenantId} has ${f.members} members; upgrade a single-node tenant (scale it to one node first)`);
  if (f.toMajor <= f.fromMajor)
    refuse('TARGET_NOT_NEWER', `${f.tenantId} runs PostgreSQL ${f.fromMajor}; the target major must be newer (asked: ${f.toMajor})`);
  else if (f.targetHosts.length === 0 && (f.runnableHosts ?? 0) > 0)
    refuse(
      'NO_ROOM',
      `no host that runs PostgreSQL ${f.toMajor} has room for the new instance, which runs beside the old one until the upgrade ends${f.noRoomReason ? ` (${f.noRoomReason})` : ''}; free room on such a host or add one`,
    );
  else if (f.targetHosts.length === 0)
    refuse('TARGET_NOT_RUNNABLE', `no connected host with room runs PostgreSQL ${f.toMajor}; install it on a host (--postgres-bin-dirs) or free room`);
  if (f.targetProblem !== undefined && f.toMajor > f.fromMajor) refuse('TARGET_UNSUPPORTED', f.targetProblem);
  const dumpClientMajor = Math.max(0, ...f.dumpClientMajors.filter((m) => m >= f.fromMajor));
  if (dumpClientMajor === 0) {
    const have = f.dumpClientMajors.length > 0 ? `it has pg_dump ${f.dumpClientMajors.join(', ')}` : 'it has no pg_dump';
    refuse(
      'NO_DUMP_CLIENT',
      `the source host cannot copy the schema: pg_dump reads only servers of its own major or older (source: ${f.fromMajor}; ${have}); install the PostgreSQL ${f.fromMajor} client tools there`,
    );
  }
  const s = f.source;
  if (!s) {
    refuse('SOURCE_UNREADABLE', `the instance of ${f.tenantId} could not be inspected; start it and try again`);
    return { ok: false, refusals };
  }
  if (s.walLevel !== 'logical')
    refuse(
      'WAL_LEVEL',
      `the instance runs with wal_level=${s.walLevel}; logical replication needs wal_level=logical, which takes a restart (stop and start the tenant)`,
    );
  if (s.largeObjects.length > 0) {
    const where = s.largeObjects.map((l) => `${l.database}: ${l.count}`);
    refuse(
      'LARGE_OBJECTS',
      `logical replication does not carry large objects and the tenant has some (${listed(where)}); move them into bytea columns or remove them`,
    );
  }
  if (s.unloggedTables.length > 0) {
    refuse(
      'UNLOGGED_TABLES',
      `logical replication does not carry unlogged tables (${listed(s.unloggedTables)}); make them logged (ALTER TABLE ... SET LOGGED) or drop them`,
    );
  }
  if (s.tablesWithoutIdentity.length > 0 && !f.replicaIdentityFull) {
    refuse(
      'NO_REPLICA_IDENTITY',
      `tables without a primary key or replica identity would lose their UPDATE and DELETE (${listed(s.tablesWithoutIdentity)}); add a primary key, or ask for REPLICA IDENTITY FULL (--replica-identity-full)`,
    );
  }
  if (refusals.length > 0) return { ok: false, refusals };
  return { ok: true, dumpClientMajor, setIdentityFull: f.replicaIdentityFull ? s.tablesWithoutIdentity : [] };
}

/** An in-place upgrade (pg_upgrade on the tenant's own host): possible only with the target major's pg_upgrade there. */
export function checkInPlaceUpgrade(f: {
  tenantId: string;
  hostId: string;
  fromMajor: number;
  toMajor: number;
  hostMajors: ReadonlyArray<{ major: string; pgUpgrade?: boolean; pgDump?: boolean }>;
}): UpgradeRefusal | undefined {
  if (f.toMajor <= f.fromMajor)
    return { code: 'TARGET_NOT_NEWER', message: `${f.tenantId} runs PostgreSQL ${f.fromMajor}; the target major must be newer (asked: ${f.toMajor})` };
  const target = f.hostMajors.find((m) => m.major === String(f.toMajor));
  if (!target)
    return {
      code: 'TARGET_NOT_RUNNABLE',
      message: `host ${f.hostId} does not run PostgreSQL ${f.toMajor}; an in-place upgrade needs it on the tenant's own host`,
    };
  if (target.pgUpgrade !== true) {
    return {
      code: 'NO_PG_UPGRADE',
      message: `host ${f.hostId} has no pg_upgrade of PostgreSQL ${f.toMajor} (server-only installs such as the npm packages ship none); install that major's full server package there, or upgrade by logical replication`,
    };
  }
  return undefined;
}

/** The refusals as one message (the API's error text). */
export function upgradeRefusalMessage(tenantId: string, refusals: readonly UpgradeRefusal[]): string {
  return `upgrade of ${tenantId} refused: ${refusals.map((r) => `${r.message} [${r.code}]`).join('; ')}`;
}
