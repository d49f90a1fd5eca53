/**
 * The PostgreSQL store's schema: the same tables as the SQLite store's, in PostgreSQL types
 * (bigint epoch ms, boolean, jsonb for the tenant spec that SQL filters and sums read), plus
 * what only several coordinators need: the leader lease row and the triggers that wake followers.
 * Versioned in schema_migrations and applied at start under an advisory lock, so coordinators
 * starting together migrate once. Never edit a released migration: add the next one.
 */
import type pg from 'pg';
import { LEASE_SCHEMA_SQL } from './leader-lease-sql.js';
import { notifyTriggersSql } from './change-wakeup.js';

/** One schema step. */
export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

const FLEET_SQL = `
  CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
  INSERT INTO meta (key, value) VALUES ('route_revision', 0);

  CREATE TABLE hosts (
    id text PRIMARY KEY,
    address text NOT NULL,
    state text NOT NULL CHECK (state IN ('READY', 'UNREACHABLE', 'DOWN')),
    cordoned boolean NOT NULL DEFAULT false,
    draining boolean NOT NULL DEFAULT false,
    cpu_millis bigint NOT NULL,
    memory_mib bigint NOT NULL,
    disk_mib bigint NOT NULL,
    labels text NOT NULL DEFAULT '{}',
    runtime text NOT NULL DEFAULT '',
    agent_version text NOT NULL DEFAULT '',
    last_heartbeat_at bigint NOT NULL,
    registered_at bigint NOT NULL,
    state_changed_at bigint NOT NULL,
    generation bigint NOT NULL DEFAULT 0
  );

  CREATE TABLE tenants (
    id text PRIMARY KEY,
    spec jsonb NOT NULL,
    revision bigint NOT NULL CHECK (revision >= 1),
    instance_revision bigint NOT NULL,
    status text NOT NULL,
    status_reason text NOT NULL DEFAULT '',
    deleting boolean NOT NULL DEFAULT false,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE INDEX tenants_status ON tenants (status);
  -- The backlog is read a page at a time, oldest first.
  CREATE INDEX tenants_waiting ON tenants (created_at, id) WHERE status = 'NEW' AND NOT deleting;

  CREATE TABLE placements (
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    host_id text NOT NULL REFERENCES hosts (id),
    role text NOT NULL CHECK (role IN ('PRIMARY', 'REPLICA')),
    realization text NOT NULL CHECK (realization IN ('PENDING', 'REALIZED', 'FAILED')),
    reason text NOT NULL DEFAULT '',
    instance_state text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT '',
    port integer NOT NULL DEFAULT 0,
    realized_revision bigint NOT NULL DEFAULT 0,
    realized_once boolean NOT NULL DEFAULT false,
    generation bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    next_retry_at bigint NOT NULL DEFAULT 0,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, host_id)
  );
  -- One primary per tenant, whatever the code above does: two live primaries fork the data.
  CREATE UNIQUE INDEX placements_one_primary ON placements (tenant_id) WHERE role = 'PRIMARY';
  CREATE INDEX placements_host ON placements (host_id);
  CREATE INDEX placements_creating ON placements (host_id) WHERE NOT realized_once;
  CREATE INDEX placements_retry ON placements (next_retry_at) WHERE realization = 'FAILED' AND next_retry_at > 0;

  CREATE TABLE users (
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    scram_verifier text NOT NULL CHECK (scram_verifier LIKE 'SCRAM-SHA-256$%'),
    owner boolean NOT NULL DEFAULT false,
    status text NOT NULL,
    status_reason text NOT NULL DEFAULT '',
    revision bigint NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, name)
  );

  CREATE TABLE databases (
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    owner text NOT NULL,
    description text NOT NULL DEFAULT '',
    status text NOT NULL,
    status_reason text NOT NULL DEFAULT '',
    revision bigint NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id, owner) REFERENCES users (tenant_id, name) DEFERRABLE INITIALLY DEFERRED
  );

  CREATE TABLE routes (
    tenant_id text PRIMARY KEY,
    host_id text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT '',
    port integer NOT NULL DEFAULT 0,
    state text NOT NULL,
    reason text NOT NULL DEFAULT '',
    external_access boolean NOT NULL,
    connection_limit integer NOT NULL,
    revision bigint NOT NULL,
    pool_mode text NOT NULL DEFAULT 'SESSION',
    users text NOT NULL DEFAULT '[]'
  );

  -- History for WatchRoutes(since_revision): a NULL route is a deletion.
  CREATE TABLE route_changes (
    revision bigint PRIMARY KEY,
    tenant_id text NOT NULL,
    route text
  );

  CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time bigint NOT NULL,
    principal text NOT NULL,
    action text NOT NULL,
    tenant_id text NOT NULL DEFAULT '',
    host_id text NOT NULL DEFAULT '',
    outcome text NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE', 'REFUSED')),
    message text NOT NULL DEFAULT '',
    details text NOT NULL DEFAULT '{}'
  );
  CREATE INDEX events_tenant ON events (tenant_id, id);
  CREATE INDEX events_host ON events (host_id, id);
  -- The audit log is append-only: the database itself refuses edits and deletions.
  CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'restrict_violation'; END $$;
  CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only();
  CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

  CREATE TABLE idempotency (
    scope text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    response text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (scope, key)
  );

  -- Secrets the platform itself must use again (a replica logs in with the replication password):
  -- sealed with AES-256-GCM (libs/security KeyRing), never plain.
  CREATE TABLE tenant_secrets (
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    sealed text NOT NULL CHECK (sealed LIKE 'v1.%'),
    verifier text NOT NULL CHECK (verifier LIKE 'SCRAM-SHA-256$%'),
    created_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, name)
  );

  CREATE TABLE fleet_ca (
    id integer PRIMARY KEY CHECK (id = 1),
    cert_pem text NOT NULL,
    key_sealed text NOT NULL CHECK (key_sealed LIKE 'v1.%'),
    created_at bigint NOT NULL
  );
  -- Join and operator tokens: only the SHA-256 of a token is kept, never the token.
  CREATE TABLE tokens (
    hash text PRIMARY KEY CHECK (length(hash) = 64),
    kind text NOT NULL CHECK (kind IN ('host', 'router', 'operator')),
    name text NOT NULL,
    role text,
    tenant_ids text NOT NULL DEFAULT '[]',
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    single_use boolean NOT NULL,
    used_at bigint,
    revoked_at bigint,
    created_by text NOT NULL DEFAULT ''
  );
  -- One live operator token per name, so "token revoke <name>" means one token.
  CREATE UNIQUE INDEX tokens_operator_name ON tokens (name) WHERE kind = 'operator' AND revoked_at IS NULL;

  CREATE TABLE fleet_secrets (
    name text PRIMARY KEY,
    key_id text NOT NULL DEFAULT '',
    sealed text NOT NULL CHECK (sealed LIKE 'v1.%'),
    created_at bigint NOT NULL
  );

  -- One pgBackRest stanza per tenant incarnation, never reused.
  CREATE TABLE tenant_stanzas (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    stanza text NOT NULL UNIQUE,
    last_archived_at bigint NOT NULL DEFAULT 0,
    last_archived_wal text NOT NULL DEFAULT '',
    created_at bigint NOT NULL
  );

  CREATE TABLE backups (
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('FULL', 'DIFF', 'INCR')),
    status text NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'EXPIRED')),
    reason text NOT NULL DEFAULT '',
    host_id text NOT NULL,
    label text NOT NULL DEFAULT '',
    prior_label text NOT NULL DEFAULT '',
    started_at bigint NOT NULL,
    finished_at bigint NOT NULL DEFAULT 0,
    size_bytes bigint NOT NULL DEFAULT 0,
    repo_size_bytes bigint NOT NULL DEFAULT 0,
    stanza_repo_size_bytes bigint NOT NULL DEFAULT 0,
    lsn_start text NOT NULL DEFAULT '',
    lsn_stop text NOT NULL DEFAULT '',
    timeline integer NOT NULL DEFAULT 0,
    trigger text NOT NULL,
    stanza text NOT NULL
  );
  CREATE INDEX backups_tenant ON backups (tenant_id, started_at);
  -- At most one backup runs per tenant, whatever the code above does.
  CREATE UNIQUE INDEX backups_one_running ON backups (tenant_id) WHERE status = 'RUNNING';

  -- A restore is a row with its phase, so a restarted coordinator resumes it.
  CREATE TABLE restores (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('new', 'in_place', 'recreate')),
    source_tenant_id text NOT NULL,
    target_tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state text NOT NULL CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    phase text NOT NULL,
    reason text NOT NULL DEFAULT '',
    source_stanza text NOT NULL,
    to_time bigint NOT NULL DEFAULT 0,
    to_backup_id text NOT NULL DEFAULT '',
    backup_label text NOT NULL DEFAULT '',
    latest boolean NOT NULL DEFAULT false,
    host_id text NOT NULL DEFAULT '',
    old_hosts text NOT NULL DEFAULT '[]',
    old_lsn text NOT NULL DEFAULT '',
    started_at bigint NOT NULL,
    finished_at bigint NOT NULL DEFAULT 0,
    recovered_lsn text NOT NULL DEFAULT '',
    recovered_time bigint NOT NULL DEFAULT 0,
    missing_wal_bytes bigint NOT NULL DEFAULT 0,
    timeline integer NOT NULL DEFAULT 0,
    created_by text NOT NULL DEFAULT ''
  );
  CREATE INDEX restores_target ON restores (target_tenant_id, started_at);
  CREATE UNIQUE INDEX restores_one_running ON restores (target_tenant_id) WHERE state = 'RUNNING';
  CREATE INDEX restores_active ON restores (phase) WHERE phase <> 'done';

  -- A failover or switchover in flight: a row per tenant with its phase and fencing point.
  CREATE TABLE operations (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('failover', 'switchover')),
    cause text NOT NULL,
    phase text NOT NULL CHECK (phase IN ('fencing', 'choosing', 'promoting')),
    failed_at bigint NOT NULL,
    started_at bigint NOT NULL,
    old_primary text NOT NULL,
    to_host_id text NOT NULL DEFAULT '',
    fenced_at bigint NOT NULL DEFAULT 0,
    fence_sent_at bigint NOT NULL DEFAULT 0,
    fence_acked_at bigint NOT NULL DEFAULT 0,
    final_lsn text NOT NULL DEFAULT '',
    candidate text NOT NULL DEFAULT '',
    chosen_at bigint NOT NULL DEFAULT 0,
    promote_sent_at bigint NOT NULL DEFAULT 0,
    deadline bigint NOT NULL DEFAULT 0,
    updated_at bigint NOT NULL
  );
`;

const INIT_SQL_SQL = `
  -- A tenant's init scripts and how far their run got (the scripts as JSON, run in order).
  CREATE TABLE tenant_init_sql (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    scripts text NOT NULL,
    state text NOT NULL CHECK (state IN ('HELD', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    applied integer NOT NULL DEFAULT 0,
    failed_script text NOT NULL DEFAULT '',
    error text NOT NULL DEFAULT '',
    attempt integer NOT NULL DEFAULT 0,
    after_revision bigint NOT NULL DEFAULT 0,
    updated_at bigint NOT NULL
  );
  -- The runner reads only the runs still to do.
  CREATE INDEX tenant_init_sql_open ON tenant_init_sql (state) WHERE state IN ('PENDING', 'RUNNING');
`;

// The once-a-second idle-suspend check and the failover watch each want a few tenants out of all of
// them: partial indexes holding only those keep their reads from scanning every tenant's spec.
const WATCHED_TENANTS_SQL = `
  CREATE INDEX tenants_idle_suspend ON tenants (id) WHERE (spec ->> 'idleSuspendSeconds')::numeric > 0;
  CREATE INDEX tenants_replicated ON tenants (id) WHERE (spec ->> 'nodes')::int >= 2;
`;

// When the old primary was found gone with its agent: a failover resumed after a restart fences it
// from there at once instead of waiting for the agent's lease.
const OPERATION_GONE_SQL = `
  ALTER TABLE operations ADD COLUMN gone_at bigint NOT NULL DEFAULT 0;
`;

// A major upgrade in flight or kept for a rollback, one per tenant (the record as JSON: read whole).
const UPGRADES_SQL = `
  CREATE TABLE upgrades (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    phase text NOT NULL CHECK (phase IN ('creating', 'copying', 'switching', 'kept')),
    other_host_id text NOT NULL,
    record jsonb NOT NULL,
    updated_at bigint NOT NULL
  );
`;

// A live move in flight, one per tenant: a restarted coordinator takes it back from here (the record
// as JSON: read whole).
const MOVES_SQL = `
  CREATE TABLE moves (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    record jsonb NOT NULL,
    updated_at bigint NOT NULL
  );
`;

// The last full desired set sent to each host (a Hello that reports its generation, still the
// host's, gets no new set while the set still hashes the same); the placements' generation was
// written on every desired set and read by nothing.
const DESIRED_SENT_SQL = `
  ALTER TABLE placements DROP COLUMN generation;
  CREATE TABLE host_desired_sent (
    host_id text PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    generation bigint NOT NULL,
    digest text NOT NULL
  );
`;

// The reconciler looks for failed placements due for a retry on every tick: read from the whole
// table, a scan of every placement. The index holds only the failed ones waiting for their retry.
const RETRY_DUE_SQL = `
  CREATE INDEX placements_retry_due ON placements (next_retry_at) WHERE realization = 'FAILED' AND next_retry_at > 0;
`;

/** Every migration, in version order. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  { version: 1, name: 'fleet schema', sql: FLEET_SQL },
  { version: 2, name: 'leader lease and follower wake-ups', sql: LEASE_SCHEMA_SQL + notifyTriggersSql(['route_changes', 'events']) },
  { version: 3, name: 'tenant init scripts and how far they ran', sql: INIT_SQL_SQL },
  { version: 4, name: 'partial indexes of the tenants the idle and failover loops watch', sql: WATCHED_TENANTS_SQL },
  { version: 5, name: "a failover's gone point is kept with its operation", sql: OPERATION_GONE_SQL },
  { version: 6, name: 'major upgrades are rows', sql: UPGRADES_SQL },
  { version: 7, name: 'live moves are rows', sql: MOVES_SQL },
  { version: 8, name: 'the last full desired set sent to each host; placements lose their unread generation', sql: DESIRED_SENT_SQL },
  { version: 9, name: 'failed placements due for a retry are read by a partial index', sql: RETRY_DUE_SQL },
];

/** The schema version this build knows. */
export const PG_LATEST_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;

/** Any number, the same in every coordinator: the advisory lock that serialises migrations. */
const MIGRATION_LOCK = 7_400_017;

/** Thrown when the store's schema is newer than this build (a downgrade would corrupt it). */
export class PgSchemaTooNewError extends Error {
  override readonly name = 'PgSchemaTooNewError';
}

/** Applies the missing migrations in one transaction; returns the resulting version and the versions applied. */
export async function migratePostgres(client: pg.ClientBase, now: number): Promise<{ version: number; applied: number[] }> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    const r = await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations');
    const current = r.rows[0]?.v ?? 0;
    if (current > PG_LATEST_SCHEMA_VERSION) {
      throw new PgSchemaTooNewError(
        `the store's schema is version ${current} but this coordinator knows only up to ${PG_LATEST_SCHEMA_VERSION}; run a newer coordinator`,
      );
    }
    const applied: number[] = [];
    for (const m of PG_MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return { version: Math.max(current, ...applied), applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
