/**
 * Replication inside an instance, over the agent's superuser socket connection: on a primary, the
 * replication role (its password only as the SCRAM verifier from the spec) with just the functions
 * pg_rewind needs, and the physical slots its replicas stream through; promotion of a standby.
 * synchronous_standby_names and primary_conninfo are settings in pgs.conf (runtime), not SQL.
 * Docs: https://www.postgresql.org/docs/current/warm-standby.html#STREAMING-REPLICATION-SLOTS,
 * functions-admin.html (pg_promote), app-pgrewind.html (non-superuser source role).
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { AgentError } from './errors.js';
import type { InstanceAdmin } from './instance-admin.js';
import { quoteIdent, verifierLiteral } from './sql-quote.js';

/** Slots the agent owns are named pgs_*; any other slot (a tenant's own) is never touched. */
const OWNED_SLOT = /^pgs_/;

// pg_rewind --source-server as a role that is not a superuser needs exactly these (app-pgrewind "Notes").
const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

/** What a primary must provide for its replicas. */
export interface PrimaryReplicationSpec {
  replicationUser: string;
  /** The role's SCRAM verifier. */
  replicationSecret: string;
  replicationSlots: readonly string[];
}

/** Where an instance is in the WAL after a promotion. */
export interface Promotion {
  promoted: boolean;
  lsn: string;
  timeline: number;
}

/** The current WAL position and timeline of a primary (the timeline from the current WAL file name). */
const POSITION_SQL = `select pg_current_wal_lsn()::text as lsn, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int as timeline`;

/** Runs replication statements in instances. */
export class ReplicationAdmin {
  constructor(
    private readonly admin: InstanceAdmin,
    private readonly log: Logger,
  ) {}

  /** Makes a primary hold the replication role and exactly the pgs_* slots of the spec. */
  async ensurePrimary(tenantId: string, spec: PrimaryReplicationSpec): Promise<void> {
    if (spec.replicationUser === '') return;
    const password = verifierLiteral(spec.replicationSecret);
    await this.admin.withClient(tenantId, 'postgres', async (client) => {
      await this.ensureRole(client, tenantId, spec.replicationUser, password, spec.replicationSecret);
      await this.ensureSlots(client, tenantId, spec.replicationSlots);
    });
  }

  private async ensureRole(client: pg.Client, tenantId: string, user: string, passwordLiteral: string, verifier: string): Promise<void> {
    const role = quoteIdent(user);
    const found = await client.query<{ rolpassword: string | null; rolreplication: boolean; rolcanlogin: boolean }>(
      'select rolpassword, rolreplication, rolcanlogin from pg_authid where rolname = $1',
      [user],
    );
    const row = found.rows[0];
    if (!row) {
      await client.query(`CREATE ROLE ${role} REPLICATION LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD ${passwordLiteral}`);
      for (const fn of REWIND_FUNCTIONS) await client.query(`GRANT EXECUTE ON FUNCTION ${fn} TO ${role}`);
      this.log.info({ tenantId, role: user }, 'replication role created');
      return;
    }
    if (row.rolpassword === verifier && row.rolreplication && row.rolcanlogin) return;
    await client.query(`ALTER ROLE ${role} REPLICATION LOGIN PASSWORD ${passwordLiteral}`);
    this.log.info({ tenantId, role: user }, 'replication role altered');
  }

  private async ensureSlots(client: pg.Client, tenantId: string, wanted: readonly string[]): Promise<void> {
    const r = await client.query<{ slot_name: string; active: boolean }>("select slot_name, active from pg_replication_slots where slot_type = 'physical'");
    const have = new Map(r.rows.map((row) => [row.slot_name, row.active]));
    for (const slot of wanted) {
      if (have.has(slot)) continue;
      // Reserve WAL at once: a replica that connects later still finds everything from now on.
      await client.query('select pg_create_physical_replication_slot($1, true)', [slot]);
      this.log.info({ tenantId, slot }, 'replication slot created');
    }
    for (const [slot, active] of have) {
      if (wanted.includes(slot) || !OWNED_SLOT.test(slot)) continue;
      if (active) {
        // A walsender still uses it (a replica being removed is still connected): next converge.
        this.log.info({ tenantId, slot }, 'slot of a removed replica still active; dropped later');
        continue;
      }
      await client.query('select pg_drop_replication_slot($1)', [slot]);
      this.log.info({ tenantId, slot }, 'replication slot of a removed replica dropped');
    }
  }

  /**
   * A standby about to be promoted in a planned switch: waits until it replayed `lsn` (the fenced
   * primary's last position, which its fast shutdown already streamed), so nothing written there is
   * lost. A primary already is past it. Throws NOT_CAUGHT_UP after `timeoutMs`.
   */
  async awaitReplay(tenantId: string, lsn: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    await this.admin.withClient(tenantId, 'postgres', async (client) => {
      for (;;) {
        const r = (
          await client.query<{ r: boolean; ok: boolean | null; at: string | null }>(
            'select pg_is_in_recovery() as r, pg_last_wal_replay_lsn() >= $1::pg_lsn as ok, pg_last_wal_replay_lsn()::text as at',
            [lsn],
          )
        ).rows[0];
        if (!r || !r.r || r.ok === true) return;
        if (performance.now() >= deadline)
          throw new AgentError(
            'NOT_CAUGHT_UP',
            `the standby of ${tenantId} replayed up to ${r.at ?? 'nothing'}, not ${lsn}, within ${timeoutMs} ms; not promoted`,
          );
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
  }

  /**
   * An immediate checkpoint, run after a promotion was answered: the checkpoint that follows a
   * promotion runs spread out, and until one completes the control file still names the old
   * timeline, so pg_rewind of the former primary would wrongly find "no rewind required" (Patroni
   * checkpoints after promotion for the same reason).
   */
  async checkpoint(tenantId: string): Promise<void> {
    const started = performance.now();
    await this.admin.withClient(tenantId, 'postgres', (client) => client.query('CHECKPOINT'));
    this.log.info({ tenantId, durationMs: Math.round(performance.now() - started) }, 'checkpoint done');
  }

  /** Promotes a standby (waits until it leaves recovery); a primary is left alone. Returns its position. */
  async promote(tenantId: string, timeoutSeconds = 60): Promise<Promotion> {
    return this.admin.withClient(tenantId, 'postgres', async (client) => {
      const recovery = (await client.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]?.r ?? false;
      if (recovery) {
        const started = performance.now();
        const done = (await client.query<{ ok: boolean }>('select pg_promote(true, $1) as ok', [timeoutSeconds])).rows[0]?.ok ?? false;
        const still = (await client.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]?.r ?? true;
        if (!done || still) throw new AgentError('PROMOTE_FAILED', `the standby of ${tenantId} did not leave recovery within ${timeoutSeconds} s`);
        this.log.warn({ tenantId, durationMs: Math.round(performance.now() - started) }, 'standby promoted to primary');
      }
      const pos = (await client.query<{ lsn: string; timeline: number }>(POSITION_SQL)).rows[0];
      return { promoted: recovery, lsn: pos?.lsn ?? '', timeline: pos?.timeline ?? 0 };
    });
  }
}
