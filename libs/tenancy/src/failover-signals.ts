/**
 * Fast failure detection as pure decisions. When a host dies several parties know within
 * milliseconds: its agent's stream to the coordinator breaks (a reset, not a goodbye), the
 * replicas' walreceivers lose their sender, routers' connects to its instances are refused. Each
 * alone is ambiguous (an agent crash leaves postgres running; a replica restarting loses its
 * sender too), so a failure is declared only when a second, independent signal confirms the first,
 * or when the agent stays silent past a short deadline. A partition (packets dropped: no reset, no
 * refusal) shows none of these and is still handled by heartbeats and the lease, as before.
 *
 * The coordinator README holds the decision table these functions implement.
 */
import type { HostState } from './statuses.js';

/** How an agent's stream to the coordinator last ended. */
export interface StreamEnd {
  /** 'goodbye': the agent half-closed it (a planned stop); 'reset': it broke (process or host died). */
  how: 'goodbye' | 'reset';
  at: number;
}

/** What the coordinator knows of one host's agent. */
export interface AgentSignals {
  /** The last message from the agent (hello, heartbeat, report); undefined: none since start. */
  lastSeenAt: number | undefined;
  /** A stream of the agent is open now. */
  connected: boolean;
  /** How its last stream ended, if one ended since start. */
  streamEnd: StreamEnd | undefined;
}

/** Liveness timing. */
export interface LivenessPolicy {
  /** Silence after which a host is UNREACHABLE. */
  ttlMs: number;
  /** Further silence after which it is DOWN. */
  graceMs: number;
  /** Silence after a broken stream (reset) that confirms the host lost: well under ttl + grace. */
  confirmMs: number;
}

/** A host's state and why. */
export interface LivenessVerdict {
  state: HostState;
  reason: string;
}

/** True when the agent's last stream broke and nothing was heard from it since. */
export function brokenAndSilent(s: AgentSignals): boolean {
  return !s.connected && s.streamEnd?.how === 'reset' && s.streamEnd.at >= (s.lastSeenAt ?? 0);
}

/**
 * The state a host should be in at `now` (`current`: the stored one). A host never heard from since
 * this coordinator started keeps `current` (a restart never takes hosts down by itself). A broken
 * stream makes the host UNREACHABLE at once and DOWN after `confirmMs` of silence; otherwise
 * heartbeats decide: READY within ttl, UNREACHABLE within ttl + grace, then DOWN. A DOWN host stays
 * DOWN until it is heard from again.
 */
export function hostLiveness(s: AgentSignals, current: HostState, now: number, policy: LivenessPolicy): LivenessVerdict {
  // A stream that ended before its agent said hello (a reconnect racing a coordinator start) says
  // nothing about the host: only an agent heard from since start can be judged.
  if (s.lastSeenAt === undefined) return { state: current, reason: 'not heard from since start' };
  if (s.streamEnd !== undefined && brokenAndSilent(s)) {
    const silent = now - s.streamEnd.at;
    // Never later than heartbeats alone would have said.
    const heartbeatSilence = now - (s.lastSeenAt ?? s.streamEnd.at);
    if (silent >= policy.confirmMs || heartbeatSilence > policy.ttlMs + policy.graceMs)
      return { state: 'DOWN', reason: `its agent's stream broke and it has been silent for ${silent} ms` };
    return { state: current === 'DOWN' ? 'DOWN' : 'UNREACHABLE', reason: `its agent's stream broke ${silent} ms ago` };
  }
  const silent = now - (s.lastSeenAt ?? s.streamEnd?.at ?? now);
  if (silent <= policy.ttlMs) return { state: 'READY', reason: 'heartbeats arrive' };
  if (silent <= policy.ttlMs + policy.graceMs) return { state: current === 'DOWN' ? 'DOWN' : 'UNREACHABLE', reason: `no heartbeat for ${silent} ms` };
  return { state: 'DOWN', reason: `no heartbeat for ${silent} ms` };
}

/** Everything the primary-loss decision looks at, for one tenant's primary. */
export interface PrimarySignals {
  hostId: string;
  /** The primary's host as liveness sees it now. */
  hostState: HostState;
  agent: AgentSignals;
  /** The primary as its agent last reported it: running and answering. */
  healthy: boolean;
  /** Since when it has been reported unhealthy with its host READY; undefined while healthy. */
  unhealthySince: number | undefined;
  /**
   * When replicas noticed that streaming from this primary stopped while they kept running
   * (their walreceiver lost its sender), one time per replica still without a sender.
   */
  senderLostAt: readonly number[];
  /** When routers last saw a connect to this primary refused (nothing listening; timeouts are not counted). */
  refusedAt: readonly number[];
  now: number;
}

/** Detection timing. */
export interface DetectionPolicy {
  /** A primary unhealthy this long while its host is READY fails over. */
  unhealthyAfterMs: number;
  /**
   * A replica's or router's signal counts with a broken stream when at most this far apart: the
   * same event (the host's processes dying) shows on every channel within it.
   */
  signalWindowMs: number;
  /**
   * A router's refusal counts only from this long before the break on: unlike a replica's lost
   * sender, which clears when it streams again, a refusal is never taken back, and one from a
   * primary that its agent restarted just before dying says nothing about the primary now.
   */
  refusalLeadMs?: number;
}

/** Why a primary counts as failed. */
export type LossCause = 'host_lost' | 'host_down' | 'unhealthy';

/** The verdict on a primary. */
export type LossVerdict =
  | { kind: 'healthy' }
  | { kind: 'suspect'; reason: string }
  | {
      kind: 'failed';
      cause: LossCause;
      reason: string;
      /** When the failure began (for the detection time). */
      failedAt: number;
      /**
       * Set when the old primary is known not to run any more and nothing can restart it behind the
       * coordinator's back (its agent is gone too, and a returning agent starts a primary only once
       * the coordinator confirms it): the fencing point. Unset: fence by command or by lease.
       */
      goneAt?: number;
    };

/**
 * Whether a replicated tenant's primary has failed (see the decision table in the coordinator
 * README). While its agent is connected the agent's own reports decide (the unhealthy rule); the
 * replicas' and routers' signals only count together with a broken, silent agent stream.
 */
export function primaryLoss(s: PrimarySignals, policy: DetectionPolicy): LossVerdict {
  const end = s.agent.streamEnd;
  if (end !== undefined && brokenAndSilent(s.agent)) {
    const lost = s.senderLostAt.filter((at) => at >= end.at - policy.signalWindowMs).map((at) => ({ at, what: 'a replica lost its stream from it' }));
    const refused = s.refusedAt
      .filter((at) => at >= end.at - Math.min(policy.signalWindowMs, policy.refusalLeadMs ?? 500))
      .map((at) => ({ at, what: 'a router was refused' }));
    const evidence = [...lost, ...refused];
    if (evidence.length > 0) {
      const last = evidence.reduce((a, b) => (b.at > a.at ? b : a));
      return {
        kind: 'failed',
        cause: 'host_lost',
        reason: `primary host ${s.hostId} is lost: its agent's stream broke and ${last.what}`,
        failedAt: Math.min(end.at, ...evidence.map((e) => e.at)),
        goneAt: Math.max(end.at, last.at),
      };
    }
    if (s.hostState === 'DOWN')
      return {
        kind: 'failed',
        cause: 'host_lost',
        reason: `primary host ${s.hostId} is lost: its agent's stream broke and it stayed silent`,
        failedAt: end.at,
      };
    return { kind: 'suspect', reason: `the agent of ${s.hostId} dropped its stream ${s.now - end.at} ms ago; waiting for a second signal or its silence` };
  }
  if (s.hostState === 'DOWN') return { kind: 'failed', cause: 'host_down', reason: `primary host ${s.hostId} is down`, failedAt: s.agent.lastSeenAt ?? s.now };
  if (s.hostState !== 'READY') return { kind: 'suspect', reason: `primary host ${s.hostId} is ${s.hostState}` };
  if (s.healthy || s.unhealthySince === undefined) return { kind: 'healthy' };
  const forMs = s.now - s.unhealthySince;
  if (forMs < policy.unhealthyAfterMs) return { kind: 'suspect', reason: `primary on ${s.hostId} unhealthy for ${forMs} ms` };
  return { kind: 'failed', cause: 'unhealthy', reason: `primary on host ${s.hostId} has been unhealthy for ${forMs} ms`, failedAt: s.unhealthySince };
}

/** What the store last recorded of a host: the last time its agent was heard from (a Hello writes it at once). */
export interface StoredHostView {
  lastHeartbeatAt: number;
}

/**
 * Whether an instance found gone with its agent at `goneAt` (primaryLoss goneAt) still counts as
 * gone: its agent is not connected and has not been heard from since, neither by this coordinator
 * process (`agent`) nor by an earlier one (`host`: a returning agent's Hello is written to the store
 * with its time before it is sent anything). An agent that came back may have started the
 * instance again, so from then on only what it reports counts. While gone, the instance fences
 * nothing, acknowledges nothing and can be left out of a primary's synchronous quorum: waiting for
 * it would stop every write until its host is declared DOWN.
 */
export function stillGone(goneAt: number, agent: AgentSignals, host: StoredHostView | undefined): boolean {
  if (!(goneAt > 0) || agent.connected) return false;
  if ((agent.lastSeenAt ?? 0) > goneAt) return false;
  return host === undefined || host.lastHeartbeatAt <= goneAt;
}

/** A replica's walreceiver as its agent last saw it. */
export interface SenderWatchState {
  /** The replica's postmaster (a restart starts over: losing the sender then is not news). */
  pid: number;
  /** It was seen streaming since that postmaster started. */
  streamed: boolean;
  /** When it stopped streaming after it had streamed (0: streaming, or never streamed). */
  lostAt: number;
}

/**
 * The next state after one look at a replica's walreceiver: losing the sender counts only when the
 * same postmaster was streaming before (a replica that restarts, or that is still catching up from
 * the archive, says nothing about its primary), and is dated by the first look that missed it.
 */
export function nextSenderWatch(prev: SenderWatchState | undefined, look: { pid: number; streaming: boolean; now: number }): SenderWatchState {
  if (!prev || prev.pid !== look.pid) return { pid: look.pid, streamed: look.streaming, lostAt: 0 };
  if (look.streaming) return { pid: look.pid, streamed: true, lostAt: 0 };
  if (prev.streamed && prev.lostAt === 0) return { ...prev, lostAt: look.now };
  return prev;
}
