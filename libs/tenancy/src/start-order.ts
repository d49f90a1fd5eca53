/**
 * Members of a tenant that start from stopped data directories (a wake, a start after a stop) start
 * primary first. A standby started beside a primary that is not up yet fails its first connection
 * and then waits PostgreSQL's wal_retrieve_retry_interval (5 s by default) before it tries again,
 * so starting everyone at once leaves the replica behind for seconds after the primary serves;
 * started once the primary runs, it connects at its first attempt.
 * Docs: https://www.postgresql.org/docs/current/runtime-config-replication.html#GUC-WAL-RETRIEVE-RETRY-INTERVAL
 */
import type { HostState, InstanceRole } from './statuses.js';

/** What the ordering decision needs about one member and its tenant's primary. */
export interface StartOrderFacts {
  role: InstanceRole;
  /** The member's last reported instance state ('' = never reported, i.e. not created yet). */
  instanceState: string;
  /** The tenant's primary: its last reported instance state and its host's liveness. */
  primary: { instanceState: string; hostState: HostState } | undefined;
}

/**
 * True when the member stays stopped for now because its primary is starting from a stopped data
 * directory. Only a stopped replica waits: a running one is never stopped for it, and one not
 * created yet is cloned from the primary (the agent waits for the primary itself). A primary on a
 * host that is not READY, or one that failed, holds nobody back: a failover needs its replicas.
 */
export function waitsForPrimary(f: StartOrderFacts): boolean {
  if (f.role !== 'REPLICA' || f.instanceState !== 'STOPPED') return false;
  if (f.primary === undefined || f.primary.hostState !== 'READY') return false;
  return f.primary.instanceState === 'STOPPED' || f.primary.instanceState === 'STARTING';
}
