/**
 * Scale to zero: when a tenant with an idle-suspend policy has been idle for its whole interval.
 * Idle means no router holds a client of it, its primary runs no non-idle backend (a session
 * idle in a transaction is busy: suspending would abort its transaction), no replication
 * other than to its own standbys and no backup. A replicated tenant (suspended only when its policy
 * asks: every member stops and wakes together) is idle only while every replica is caught up, so
 * the members stop on the same data and the replicas resume streaming from where they stood. Anything unknown (a router that did not report,
 * no fresh health) counts as busy: a wrong suspend cuts clients off, a late one costs memory.
 */
import type { RunState, TenantStatus } from './statuses.js';

/** What the coordinator observed of one tenant at `now`. */
export interface IdleFacts {
  /** Clients open at the routers, summed; undefined when a router's count is unknown. */
  routerClients: number | undefined;
  /** Busy backends on the primary (last health report); undefined when no fresh report exists. */
  busyBackends: number | undefined;
  /** A backup (or a restore) of the tenant is running. */
  backupRunning: boolean;
  /** Its replicas (none for a single-node tenant): caught up with the primary; undefined when no fresh report says. */
  replicas?: readonly { hostId: string; caughtUp: boolean | undefined }[];
}

/** The tenant as the idle decision needs it. */
export interface IdleTenant {
  status: TenantStatus;
  runState: RunState;
  deleting: boolean;
  /** The policy: seconds; 0 or undefined = never suspend. */
  idleSuspendSeconds: number | undefined;
}

/** The outcome: when it was last seen busy (keep it for the next call), and whether to suspend now. */
export interface IdleDecision {
  /** Epoch ms of the last moment the tenant was busy (or not eligible); the idle interval counts from it. */
  lastBusyAt: number;
  suspend: boolean;
  /** Why (for logs and the suspend event): what kept it awake, or how long it was idle. */
  reason: string;
}

/**
 * Decides for one tenant. `lastBusyAt` is the previous decision's (undefined the first time: the
 * interval starts now, so a coordinator that just started never suspends on old facts).
 */
export function decideIdleSuspend(tenant: IdleTenant, facts: IdleFacts, lastBusyAt: number | undefined, now: number): IdleDecision {
  const policy = tenant.idleSuspendSeconds ?? 0;
  const busy = (reason: string): IdleDecision => ({ lastBusyAt: now, suspend: false, reason });
  if (policy <= 0) return busy('idle suspend is off');
  if (tenant.deleting || tenant.runState !== 'RUNNING' || tenant.status !== 'ACTIVE')
    return busy(`the tenant is ${tenant.deleting ? 'being deleted' : tenant.status}`);
  if (facts.routerClients === undefined) return busy('a router has not reported its clients');
  if (facts.routerClients > 0) return busy(`${facts.routerClients} client(s) at the routers`);
  if (facts.busyBackends === undefined) return busy('no recent health report of the primary');
  if (facts.busyBackends > 0) return busy(`${facts.busyBackends} busy backend(s)`);
  if (facts.backupRunning) return busy('a backup is running');
  for (const r of facts.replicas ?? []) {
    if (r.caughtUp === undefined) return busy(`no recent health report of the replica on ${r.hostId}`);
    if (!r.caughtUp) return busy(`the replica on ${r.hostId} is not caught up`);
  }
  const since = lastBusyAt ?? now;
  const idleMs = now - since;
  return { lastBusyAt: since, suspend: idleMs >= policy * 1000, reason: `idle for ${Math.floor(idleMs / 1000)}s (policy ${policy}s)` };
}

/** Words for a policy: 'off', '90s', '5m', '2h'. */
export function formatIdleSuspend(seconds: number | undefined): string {
  const s = seconds ?? 0;
  if (s <= 0) return 'off';
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
