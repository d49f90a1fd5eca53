/**
 * Names the replication set-up of a tenant needs, derived the same way by every component: the
 * replication role, a standby's application_name (which synchronous_standby_names refers to), its
 * physical replication slot on the primary, and synchronous_standby_names itself
 * (PostgreSQL docs, "synchronous_standby_names": `ANY num_sync ( standby_name [, ...] )`).
 */
import { ValidationError } from './errors.js';

/** The role replicas connect as (prefix pgs_ is reserved: no tenant user can take it). */
export const REPLICATION_ROLE = 'pgs_replication';

/** Prefix of the replication slots the platform manages; others are the tenant's own. */
export const REPLICATION_SLOT_PREFIX = 'pgs_';

/** PostgreSQL's NAMEDATALEN - 1. */
const MAX_IDENTIFIER = 63;

/** 32-bit FNV-1a, enough to tell apart host ids that sanitise to the same slot name. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The application_name a replica on `hostId` uses in primary_conninfo: the host id itself (host ids are unique per tenant). */
export function standbyName(hostId: string): string {
  return hostId;
}

/**
 * The physical replication slot kept on the primary for the replica on `hostId`. Slot names allow
 * only `a-z 0-9 _` and 63 bytes; host ids also allow `.` and `-`, so those become `_` and a hash of
 * the id is added whenever anything was changed or cut, keeping different hosts on different slots.
 */
export function replicationSlotName(hostId: string): string {
  const clean = hostId.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const plain = `${REPLICATION_SLOT_PREFIX}${clean}`;
  if (clean === hostId && plain.length <= MAX_IDENTIFIER) return plain;
  const suffix = `_${fnv1a(hostId)}`;
  return `${plain.slice(0, MAX_IDENTIFIER - suffix.length)}${suffix}`;
}

/** A standby name quoted for synchronous_standby_names (always quoted, so any name is taken literally). */
function quoteStandby(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * synchronous_standby_names for a quorum of `k` among `names`: `ANY k ("a", "b")`, or '' when k is
 * 0 (asynchronous replication). A commit is acknowledged once any k of the named standbys flushed it.
 */
export function synchronousStandbyNames(k: number, names: readonly string[]): string {
  if (!Number.isInteger(k) || k < 0 || k > names.length) {
    throw new ValidationError('sync_replicas', k, `an integer from 0 to the number of standbys named (${names.length})`);
  }
  if (names.some((n) => n === '' || n.length > MAX_IDENTIFIER)) {
    throw new ValidationError('standby_names', names, `non-empty names of at most ${MAX_IDENTIFIER} characters`);
  }
  if (new Set(names).size !== names.length) throw new ValidationError('standby_names', names, 'distinct names');
  if (k === 0) return '';
  return `ANY ${k} (${names.map(quoteStandby).join(', ')})`;
}

/** The synchronous replication a primary runs with, given the replicas that can take part now. */
export interface SyncConfig {
  /** Quorum size in force: min(asked, available). */
  k: number;
  /** Standby names in the quorum, in the order given. */
  names: string[];
  /** synchronous_standby_names text. */
  setting: string;
  /** True when fewer synchronous replicas than asked are available (or none at all). */
  degraded: boolean;
}

/**
 * The sync configuration for `syncReplicas` asked and the standbys that are not lost (their host is
 * not DOWN). When fewer are available than asked, the quorum shrinks to what is there, down to
 * asynchronous: a primary whose only synchronous replica died must keep accepting writes (as
 * Patroni's non-strict synchronous_mode does); `degraded` says so, for the status and the audit log.
 */
export function syncConfigFor(syncReplicas: number, availableStandbys: readonly string[]): SyncConfig {
  const names = [...availableStandbys];
  const k = Math.min(syncReplicas, names.length);
  return { k, names: k === 0 ? [] : names, setting: synchronousStandbyNames(k, k === 0 ? [] : names), degraded: syncReplicas > 0 && k < syncReplicas };
}
