/**
 * The replication part of an instance's settings (written to pgs.conf with the rest, so a change
 * reaches a running server by a reload: every one of these but wal_log_hints is reloadable in
 * PostgreSQL 13+). The same keys are written for both roles, so a promotion or a demotion only
 * changes values, never restarts the server.
 */
import type { InstanceRole } from '@pgs/tenancy';
import type { RuntimeReplication } from './runtime.js';
import { primaryConninfo, type ReplicationTls } from './standby-tools.js';

/** Settings for `role` with `replication` (none for a lone instance). */
export function replicationSettings(
  role: InstanceRole,
  replication: RuntimeReplication | undefined,
  passFile: string,
  tls?: ReplicationTls,
): Record<string, string> {
  if (!replication) return {};
  const replica = role === 'REPLICA';
  return {
    // pg_rewind needs hint-bit changes WAL-logged to bring a former primary back without a re-clone.
    wal_log_hints: 'on',
    hot_standby: 'on',
    // A commit waits for this quorum of standbys (primary only; a standby ignores it).
    synchronous_standby_names: replica ? '' : replication.synchronousStandbyNames,
    primary_conninfo: replica && replication.primaryPort > 0 ? primaryConninfo(replication, passFile, undefined, tls) : '',
    primary_slot_name: replica ? replication.slot : '',
    // After a failover the new primary is on a new timeline: follow it.
    recovery_target_timeline: 'latest',
  };
}
