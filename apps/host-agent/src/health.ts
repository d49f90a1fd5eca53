/**
 * Health of one running instance, measured over the agent's kept superuser socket connection
 * (kept-connections.ts): accepting connections, client connections, busy backends (what keeps an
 * idle-suspend tenant awake), total database size, role (primary or replica), WAL position,
 * replication lag and timeline.
 *
 * The health statement is prepared once per connection (planning its views each time cost about
 * twice as much as running it), and the database size, which stats every file of every database,
 * is read at most once per `sizeEveryMs`: it feeds disk accounting and metrics, which a size a few
 * seconds old serves as well.
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import type { KeptConnections } from './kept-connections.js';
import type { InstanceHealth } from './model.js';

// On a replica: lsn is the greater of what it received and what it replayed (what failover compares);
// lag is how far replay trails the primary's last known end of WAL (pg_stat_wal_receiver); timeline
// is the one it streams. On a primary: its current LSN and the timeline of its current WAL file.
const HEALTH_SQL = `
select pg_is_in_recovery() as recovery,
  (select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid())::int as connections,
  (select count(*) from pg_stat_activity a where pid <> pg_backend_pid() and (
     (a.backend_type = 'client backend' and a.state is distinct from 'idle') or
     (a.backend_type = 'walsender' and not exists (select 1 from pg_replication_slots s where s.active_pid = a.pid and s.slot_type = 'physical'))))::int as busy,
  (case when pg_is_in_recovery()
     then greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
     else pg_current_wal_lsn() end)::text as lsn,
  (case when pg_is_in_recovery()
     then coalesce(pg_wal_lsn_diff(greatest(pg_last_wal_receive_lsn(), (select latest_end_lsn from pg_stat_wal_receiver)), pg_last_wal_replay_lsn()), 0)
     else 0 end)::text as lag,
  (case when pg_is_in_recovery()
     then coalesce((select received_tli from pg_stat_wal_receiver), (select timeline_id from pg_control_checkpoint()))
     else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end)::int as timeline`;

const SIZE_SQL = 'select coalesce(sum(pg_database_size(oid)), 0)::text as size from pg_database where datallowconn';

interface HealthRow {
  recovery: boolean;
  connections: number;
  busy: number;
  lsn: string | null;
  lag: string;
  timeline: number;
}

/** A down instance: nothing to measure. */
export function downHealth(now: number): InstanceHealth {
  return {
    up: false,
    acceptingConnections: false,
    connections: 0,
    busyBackends: 0,
    databaseSizeBytes: 0,
    role: 'PRIMARY',
    lsn: '',
    lagBytes: 0,
    timeline: 0,
    checkedAt: now,
  };
}

/**
 * A server whose postmaster just said it accepts connections, before its first measure: what a
 * woken primary reports at once (its measure follows; see InstanceManager).
 */
export function startedHealth(now: number): InstanceHealth {
  return { ...downHealth(now), up: true, acceptingConnections: true };
}

/** Measures running instances over kept connections. */
export class HealthProbe {
  private readonly sizes = new Map<string, { bytes: number; at: number }>();

  constructor(
    private readonly connections: KeptConnections,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly sizeEveryMs = 10_000,
  ) {}

  /**
   * Measures a running instance; a server that is up but refuses the check is up and not accepting.
   * `keep`: over the instance's kept connection (else over one of its own, see KeptConnections.use).
   */
  async measure(tenantId: string, keep = true): Promise<InstanceHealth> {
    try {
      return await this.connections.use(
        tenantId,
        async (client) => {
          const row = (await client.query<HealthRow>({ name: 'pgs-health', text: HEALTH_SQL })).rows[0];
          if (!row) return { ...downHealth(this.now()), up: true };
          return {
            up: true,
            acceptingConnections: true,
            connections: row.connections,
            busyBackends: row.busy,
            databaseSizeBytes: await this.size(tenantId, client),
            role: row.recovery ? 'REPLICA' : 'PRIMARY',
            lsn: row.lsn ?? '',
            lagBytes: Math.max(0, Math.round(Number(row.lag))),
            timeline: row.timeline,
            checkedAt: this.now(),
          };
        },
        keep,
      );
    } catch (err) {
      // The process is alive (the caller checked) but it does not take connections: starting,
      // shutting down, or out of connection slots. That is the report, not an error.
      this.log.debug({ tenantId, err }, 'health check could not connect');
      return { ...downHealth(this.now()), up: true };
    }
  }

  /** Forgets what was measured of a tenant's instance (it stopped or went away). */
  forget(tenantId: string): void {
    this.sizes.delete(tenantId);
  }

  private async size(tenantId: string, client: pg.Client): Promise<number> {
    const known = this.sizes.get(tenantId);
    const now = this.now();
    if (known && now - known.at < this.sizeEveryMs) return known.bytes;
    const bytes = Number((await client.query<{ size: string }>({ name: 'pgs-size', text: SIZE_SQL })).rows[0]?.size ?? 0);
    this.sizes.set(tenantId, { bytes, at: now });
    return bytes;
  }
}
