/**
 * Versioned schema migrations, applied in order at start, each in its own transaction and
 * recorded in schema_migrations. Never edit a released migration: add the next one.
 */
import type Database from 'better-sqlite3';

/** One schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Every migration, in version order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial fleet schema',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta (key, value) VALUES ('route_revision', '0');

      CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('READY', 'UNREACHABLE', 'DOWN')),
        cordoned INTEGER NOT NULL DEFAULT 0,
        draining INTEGER NOT NULL DEFAULT 0,
        cpu_millis INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        disk_mib INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        runtime TEXT NOT NULL DEFAULT '',
        agent_version TEXT NOT NULL DEFAULT '',
        last_heartbeat_at INTEGER NOT NULL,
        registered_at INTEGER NOT NULL,
        state_changed_at INTEGER NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0
      );

      CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        revision INTEGER NOT NULL CHECK (revision >= 1),
        instance_revision INTEGER NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        deleting INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX tenants_status ON tenants (status);

      CREATE TABLE placements (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        host_id TEXT NOT NULL REFERENCES hosts (id),
        role TEXT NOT NULL CHECK (role IN ('PRIMARY', 'REPLICA')),
        realization TEXT NOT NULL CHECK (realization IN ('PENDING', 'REALIZED', 'FAILED')),
        reason TEXT NOT NULL DEFAULT '',
        instance_state TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        port INTEGER NOT NULL DEFAULT 0,
        realized_revision INTEGER NOT NULL DEFAULT 0,
        realized_once INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        next_retry_at INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, host_id)
      );
      -- One primary per tenant, whatever the code above does: two live primaries fork the data.
      CREATE UNIQUE INDEX placements_one_primary ON placements (tenant_id) WHERE role = 'PRIMARY';
      CREATE INDEX placements_host ON placements (host_id);

      CREATE TABLE users (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        scram_verifier TEXT NOT NULL CHECK (scram_verifier LIKE 'SCRAM-SHA-256$%'),
        owner INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        revision INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
      );

      CREATE TABLE databases (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        revision INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name),
        FOREIGN KEY (tenant_id, owner) REFERENCES users (tenant_id, name) DEFERRABLE INITIALLY DEFERRED
      );

      CREATE TABLE routes (
        tenant_id TEXT PRIMARY KEY,
        host_id TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        port INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        external_access INTEGER NOT NULL,
        connection_limit INTEGER NOT NULL,
        revision INTEGER NOT NULL
      );

      -- History for WatchRoutes(since_revision): a NULL route is a deletion.
      CREATE TABLE route_changes (
        revision INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        route TEXT
      );

      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        tenant_id TEXT NOT NULL DEFAULT '',
        host_id TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE', 'REFUSED')),
        message TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX events_tenant ON events (tenant_id, id);
      CREATE INDEX events_host ON events (host_id, id);
      -- The audit log is append-only: the database itself refuses edits and deletions.
      CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

      CREATE TABLE idempotency (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
      );
    `,
  },
  {
    version: 2,
    name: 'tenant secrets (replication role)',
    sql: `
      -- Secrets the platform itself must be able to use again (a replica logs in with the
      -- replication password): sealed with AES-256-GCM (libs/security KeyRing), never plain.
      -- The verifier is what PostgreSQL stores; it is not a password.
      CREATE TABLE tenant_secrets (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sealed TEXT NOT NULL CHECK (sealed LIKE 'v1.%'),
        verifier TEXT NOT NULL CHECK (verifier LIKE 'SCRAM-SHA-256$%'),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
      );
    `,
  },
  {
    version: 3,
    name: 'security baseline (fleet CA, tokens)',
    sql: `
      -- The fleet CA: the certificate is public, the private key only sealed
      -- (AES-256-GCM, libs/security KeyRing, context 'pgs:fleet-ca-key').
      CREATE TABLE fleet_ca (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        cert_pem TEXT NOT NULL,
        key_sealed TEXT NOT NULL CHECK (key_sealed LIKE 'v1.%'),
        created_at INTEGER NOT NULL
      );
      -- Join and operator tokens: only the SHA-256 of a token is kept, never the token.
      CREATE TABLE tokens (
        hash TEXT PRIMARY KEY CHECK (length(hash) = 64),
        kind TEXT NOT NULL CHECK (kind IN ('host', 'router', 'operator')),
        name TEXT NOT NULL,
        role TEXT,
        tenant_ids TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        single_use INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER,
        created_by TEXT NOT NULL DEFAULT ''
      );
      -- One live operator token per name, so "token revoke <name>" means one token.
      CREATE UNIQUE INDEX tokens_operator_name ON tokens (name) WHERE kind = 'operator' AND revoked_at IS NULL;
    `,
  },
  {
    version: 4,
    name: 'placements still being created, per host',
    sql: `
      -- Placement reads the instances each host is still creating at every step (so a
      -- burst of creates is spread over hosts); the partial index holds only those rows.
      CREATE INDEX placements_creating ON placements (host_id) WHERE realized_once = 0;
    `,
  },
  {
    version: 5,
    name: 'backups, restores, stanzas and fleet secrets',
    sql: `
      -- One pgBackRest stanza per tenant incarnation: named once when the tenant is created (or
      -- first backed up) and never reused, so a deleted-and-recreated id never reads an old
      -- tenant's backups. The last archived WAL is kept here so the recovery window survives a
      -- coordinator restart.
      CREATE TABLE tenant_stanzas (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        stanza TEXT NOT NULL UNIQUE,
        last_archived_at INTEGER NOT NULL DEFAULT 0,
        last_archived_wal TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL
      );

      CREATE TABLE backups (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        type TEXT NOT NULL CHECK (type IN ('FULL', 'DIFF', 'INCR')),
        status TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'EXPIRED')),
        reason TEXT NOT NULL DEFAULT '',
        host_id TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        prior_label TEXT NOT NULL DEFAULT '',
        started_at INTEGER NOT NULL,
        finished_at INTEGER NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        repo_size_bytes INTEGER NOT NULL DEFAULT 0,
        stanza_repo_size_bytes INTEGER NOT NULL DEFAULT 0,
        lsn_start TEXT NOT NULL DEFAULT '',
        lsn_stop TEXT NOT NULL DEFAULT '',
        timeline INTEGER NOT NULL DEFAULT 0,
        trigger TEXT NOT NULL,
        stanza TEXT NOT NULL
      );
      CREATE INDEX backups_tenant ON backups (tenant_id, started_at);
      -- At most one backup runs per tenant, whatever the code above does.
      CREATE UNIQUE INDEX backups_one_running ON backups (tenant_id) WHERE status = 'RUNNING';

      -- A restore is a row with its phase, so a restarted coordinator resumes it.
      CREATE TABLE restores (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('new', 'in_place', 'recreate')),
        source_tenant_id TEXT NOT NULL,
        target_tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
        phase TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        source_stanza TEXT NOT NULL,
        to_time INTEGER NOT NULL DEFAULT 0,
        to_backup_id TEXT NOT NULL DEFAULT '',
        backup_label TEXT NOT NULL DEFAULT '',
        latest INTEGER NOT NULL DEFAULT 0,
        host_id TEXT NOT NULL DEFAULT '',
        old_hosts TEXT NOT NULL DEFAULT '[]',
        old_lsn TEXT NOT NULL DEFAULT '',
        started_at INTEGER NOT NULL,
        finished_at INTEGER NOT NULL DEFAULT 0,
        recovered_lsn TEXT NOT NULL DEFAULT '',
        recovered_time INTEGER NOT NULL DEFAULT 0,
        missing_wal_bytes INTEGER NOT NULL DEFAULT 0,
        timeline INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL DEFAULT ''
      );
      CREATE INDEX restores_target ON restores (target_tenant_id, started_at);
      -- One restore at a time into a tenant.
      CREATE UNIQUE INDEX restores_one_running ON restores (target_tenant_id) WHERE state = 'RUNNING';
      -- The desired sets read the restores not done yet (a handful) on every push.
      CREATE INDEX restores_active ON restores (phase) WHERE phase != 'done';

      -- Secrets of the fleet itself (the backup repository's cipher pass and S3 credentials):
      -- sealed with AES-256-GCM (libs/security KeyRing, context 'pgs:fleet-secret:<name>').
      CREATE TABLE fleet_secrets (
        name TEXT PRIMARY KEY,
        key_id TEXT NOT NULL DEFAULT '',
        sealed TEXT NOT NULL CHECK (sealed LIKE 'v1.%'),
        created_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: 'routes carry the pool mode and the users routers authenticate',
    sql: `
      -- Routes written before are refreshed by the next sync of their tenant; until then routers
      -- are told SESSION with no users, which the default spec asks for anyway.
      ALTER TABLE routes ADD COLUMN pool_mode TEXT NOT NULL DEFAULT 'SESSION';
      ALTER TABLE routes ADD COLUMN users TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 7,
    name: 'tenant init scripts and how far they ran',
    sql: `
      CREATE TABLE tenant_init_sql (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        scripts TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('HELD', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
        applied INTEGER NOT NULL DEFAULT 0,
        failed_script TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        attempt INTEGER NOT NULL DEFAULT 0,
        after_revision INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
      -- The runner reads only the runs still to do.
      CREATE INDEX tenant_init_sql_open ON tenant_init_sql (state) WHERE state IN ('PENDING', 'RUNNING');
    `,
  },
  {
    version: 8,
    name: 'failover and switchover operations are rows',
    sql: `
      -- One failover or switchover in flight per tenant, with its phase and fencing point, so a
      -- restarted coordinator resumes it instead of rebuilding it from the audit log.
      CREATE TABLE operations (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('failover', 'switchover')),
        cause TEXT NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('fencing', 'choosing', 'promoting')),
        failed_at INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        old_primary TEXT NOT NULL,
        to_host_id TEXT NOT NULL DEFAULT '',
        fenced_at INTEGER NOT NULL DEFAULT 0,
        fence_sent_at INTEGER NOT NULL DEFAULT 0,
        fence_acked_at INTEGER NOT NULL DEFAULT 0,
        final_lsn TEXT NOT NULL DEFAULT '',
        candidate TEXT NOT NULL DEFAULT '',
        chosen_at INTEGER NOT NULL DEFAULT 0,
        promote_sent_at INTEGER NOT NULL DEFAULT 0,
        deadline INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 9,
    name: 'the loops that watch a few tenants read only those',
    sql: `
      -- The idle-suspend check runs every second and the failover watch every tick; read from the
      -- whole table, each costs a scan of every tenant's spec (seconds at a million tenants, with
      -- the event loop held). Partial indexes hold just the tenants they watch.
      CREATE INDEX tenants_idle_suspend ON tenants (id) WHERE json_extract(spec, '$.idleSuspendSeconds') > 0;
      CREATE INDEX tenants_replicated ON tenants (id) WHERE json_extract(spec, '$.nodes') >= 2;
    `,
  },
  {
    version: 10,
    name: "a failover's gone point is kept with its operation",
    sql: `
      -- When the old primary was found gone with its agent: a failover resumed after a restart
      -- fences it from there at once instead of waiting for the agent's lease.
      ALTER TABLE operations ADD COLUMN gone_at INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 11,
    name: 'major upgrades are rows',
    sql: `
      -- A major upgrade in flight or kept for a rollback, one per tenant: the phase and the host of
      -- its other instance as columns, the rest of the record as JSON (read whole, never filtered).
      CREATE TABLE upgrades (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        phase TEXT NOT NULL CHECK (phase IN ('creating', 'copying', 'switching', 'kept')),
        other_host_id TEXT NOT NULL,
        record TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 12,
    name: 'live moves are rows',
    sql: `
      -- A live move in flight, one per tenant: a restarted coordinator takes it back from here (the
      -- record as JSON, read whole, never filtered).
      CREATE TABLE moves (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        record TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 13,
    name: 'the last full desired set sent to each host; placements lose their unread generation',
    sql: `
      -- Written on every desired set and read by nothing: a Hello rewrote every placement of its host.
      ALTER TABLE placements DROP COLUMN generation;
      -- A Hello that reports the generation of the last full set, still the host's, gets no new
      -- set while the set still hashes the same.
      CREATE TABLE host_desired_sent (
        host_id TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
        generation INTEGER NOT NULL,
        digest TEXT NOT NULL
      );
    `,
  },
  {
    version: 14,
    name: 'failed placements due for a retry are read by a partial index',
    sql: `
      -- The reconciler looks for failed placements due for a retry on every tick: read from the
      -- whole table, a scan of every placement (about 20 ms a tick at 100,000 tenants, at rest too).
      -- The index holds only the failed ones waiting for their retry.
      CREATE INDEX placements_retry_due ON placements (next_retry_at) WHERE realization = 'FAILED' AND next_retry_at > 0;
    `,
  },
];

/** The schema version this build knows. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** Thrown when the file's schema is newer than this build (a downgrade would corrupt it). */
export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError';
}

/** Applies the missing migrations; returns the resulting version and the versions applied. */
export function migrate(db: Database.Database, now: number): { version: number; applied: number[] } {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
  if (current > LATEST_SCHEMA_VERSION) {
    throw new SchemaTooNewError(
      `the store's schema is version ${current} but this coordinator knows only up to ${LATEST_SCHEMA_VERSION}; run a newer coordinator`,
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now);
    })();
    applied.push(m.version);
  }
  return { version: Math.max(current, ...applied), applied };
}
