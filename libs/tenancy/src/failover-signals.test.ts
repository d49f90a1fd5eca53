import { describe, expect, it } from 'vitest';
import { hostLiveness, nextSenderWatch, primaryLoss, stillGone, type AgentSignals, type PrimarySignals } from './failover-signals.js';
import { fencingState } from './failover.js';

const policy = { ttlMs: 3000, graceMs: 4000, confirmMs: 1500 };
const connected: AgentSignals = { lastSeenAt: 10_000, connected: true, streamEnd: undefined };
const reset = (at: number): AgentSignals => ({ lastSeenAt: at - 200, connected: false, streamEnd: { how: 'reset', at } });

describe('hostLiveness (one test per row of the README table)', () => {
  it('a stream that ended before its agent was ever heard from since start: keeps the stored state', () => {
    expect(hostLiveness({ lastSeenAt: undefined, connected: false, streamEnd: { how: 'reset', at: 10_000 } }, 'READY', 20_000, policy).state).toBe('READY');
  });

  it('never heard from since start: keeps the stored state', () => {
    expect(hostLiveness({ lastSeenAt: undefined, connected: false, streamEnd: undefined }, 'DOWN', 50_000, policy).state).toBe('DOWN');
  });
  it('heartbeats within ttl: READY', () => {
    expect(hostLiveness(connected, 'UNREACHABLE', 12_999, policy).state).toBe('READY');
  });
  it('silent past ttl: UNREACHABLE; past ttl + grace: DOWN (a partition: no reset)', () => {
    expect(hostLiveness(connected, 'READY', 13_001, policy).state).toBe('UNREACHABLE');
    expect(hostLiveness(connected, 'READY', 17_000, policy).state).toBe('UNREACHABLE');
    expect(hostLiveness(connected, 'READY', 17_001, policy).state).toBe('DOWN');
  });
  it('a broken stream: UNREACHABLE at once, DOWN after confirmMs of silence', () => {
    expect(hostLiveness(reset(10_000), 'READY', 10_001, policy).state).toBe('UNREACHABLE');
    expect(hostLiveness(reset(10_000), 'READY', 11_499, policy).state).toBe('UNREACHABLE');
    expect(hostLiveness(reset(10_000), 'READY', 11_500, policy)).toMatchObject({ state: 'DOWN', reason: expect.stringMatching(/stream broke/) });
  });
  it('a broken stream is never DOWN later than heartbeats alone would say', () => {
    expect(hostLiveness(reset(10_000), 'READY', 10_500, { ttlMs: 200, graceMs: 200, confirmMs: 1500 }).state).toBe('DOWN');
  });
  it('a goodbye is a planned stop: heartbeats decide as before', () => {
    const bye: AgentSignals = { lastSeenAt: 9_800, connected: false, streamEnd: { how: 'goodbye', at: 10_000 } };
    expect(hostLiveness(bye, 'READY', 12_000, policy).state).toBe('READY');
    expect(hostLiveness(bye, 'READY', 16_900, policy).state).toBe('DOWN');
  });
  it('heard from after the reset (reconnected): heartbeats decide', () => {
    const back: AgentSignals = { lastSeenAt: 10_500, connected: true, streamEnd: { how: 'reset', at: 10_000 } };
    expect(hostLiveness(back, 'UNREACHABLE', 12_000, policy).state).toBe('READY');
  });
  it('a DOWN host stays DOWN while silent', () => {
    expect(hostLiveness(connected, 'DOWN', 14_000, policy).state).toBe('DOWN');
  });
});

describe('primaryLoss (one test per row of the README table)', () => {
  const detect = { unhealthyAfterMs: 10_000, signalWindowMs: 2_000 };
  const base: PrimarySignals = {
    hostId: 'h1',
    hostState: 'READY',
    agent: connected,
    healthy: true,
    unhealthySince: undefined,
    senderLostAt: [],
    refusedAt: [],
    now: 10_100,
  };

  it('agent connected and the primary healthy: healthy, whatever replicas and routers say', () => {
    expect(primaryLoss({ ...base, senderLostAt: [10_000], refusedAt: [10_050] }, detect)).toEqual({ kind: 'healthy' });
  });
  it('agent connected, primary unhealthy: fails over only past unhealthyAfterMs', () => {
    expect(primaryLoss({ ...base, healthy: false, unhealthySince: 5_000 }, detect).kind).toBe('suspect');
    expect(primaryLoss({ ...base, healthy: false, unhealthySince: 0, now: 10_000 }, detect)).toMatchObject({ kind: 'failed', cause: 'unhealthy', failedAt: 0 });
  });
  it('stream reset alone: only a suspicion', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: reset(10_000) }, detect).kind).toBe('suspect');
  });
  it('stream reset and a replica lost its sender: failed, the old primary counts as gone from the later signal', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: reset(10_000), senderLostAt: [10_040] }, detect)).toMatchObject({
      kind: 'failed',
      cause: 'host_lost',
      failedAt: 10_000,
      goneAt: 10_040,
    });
  });
  it('stream reset and a router refused: failed the same way', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: reset(10_000), refusedAt: [9_990] }, detect)).toMatchObject({
      kind: 'failed',
      cause: 'host_lost',
      failedAt: 9_990,
      goneAt: 10_000,
    });
  });
  it('a refusal from well before the reset (a primary its agent was restarting) is not evidence', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: reset(10_000), refusedAt: [9_000] }, detect).kind).toBe('suspect');
  });
  it('a second signal from long before the reset is another event: only a suspicion', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: reset(10_000), senderLostAt: [7_000] }, detect).kind).toBe('suspect');
  });
  it('stream reset, then silence until liveness says DOWN: failed, fenced by command or lease (no goneAt)', () => {
    const v = primaryLoss({ ...base, hostState: 'DOWN', agent: reset(10_000), now: 11_600 }, detect);
    expect(v).toMatchObject({ kind: 'failed', cause: 'host_lost', failedAt: 10_000 });
    expect(v.kind === 'failed' && v.goneAt).toBeFalsy();
  });
  it('a goodbye with a replica and router signal: no fast path (heartbeats and lease decide)', () => {
    const bye: AgentSignals = { lastSeenAt: 9_900, connected: false, streamEnd: { how: 'goodbye', at: 10_000 } };
    expect(primaryLoss({ ...base, agent: bye, senderLostAt: [10_010], refusedAt: [10_020] }, detect)).toEqual({ kind: 'healthy' });
  });
  it('a partition: no reset, silence to DOWN; failed, fenced by lease', () => {
    const v = primaryLoss({ ...base, hostState: 'DOWN', agent: { ...connected, connected: false }, now: 18_000 }, detect);
    expect(v).toMatchObject({ kind: 'failed', cause: 'host_down', failedAt: 10_000 });
    expect(v.kind === 'failed' && v.goneAt).toBeFalsy();
  });
  it('UNREACHABLE without a reset: wait', () => {
    expect(primaryLoss({ ...base, hostState: 'UNREACHABLE', agent: { ...connected, connected: false } }, detect).kind).toBe('suspect');
  });
  it('the agent back after a reset: its reports decide again', () => {
    const back: AgentSignals = { lastSeenAt: 10_500, connected: true, streamEnd: { how: 'reset', at: 10_000 } };
    expect(primaryLoss({ ...base, agent: back, senderLostAt: [10_040] }, detect)).toEqual({ kind: 'healthy' });
  });
});

describe('fencingState with a gone primary', () => {
  const f = { ackedAt: undefined, leaseRenewedAt: 10_000, leaseMs: 5000, now: 10_100 };
  it('gone while the agent is away: fenced at once from the gone point', () => {
    expect(fencingState({ ...f, goneAt: 10_040, agentConnected: false })).toEqual({ fenced: true, via: 'gone', at: 10_040 });
  });
  it('the agent came back: only its acknowledgement (or the lease) fences', () => {
    expect(fencingState({ ...f, goneAt: 10_040, agentConnected: true }).fenced).toBe(false);
    expect(fencingState({ ...f, ackedAt: 10_090, goneAt: 10_040, agentConnected: true })).toEqual({ fenced: true, via: 'ack', at: 10_090 });
  });
});

describe('stillGone (a primary found gone with its agent)', () => {
  const away = reset(10_000);
  const stored = { lastHeartbeatAt: 9_800 };
  it('its agent away since and the store agrees: still gone', () => {
    expect(stillGone(10_040, away, stored)).toBe(true);
    expect(stillGone(10_040, away, undefined)).toBe(true);
  });
  it('no gone point: not gone', () => {
    expect(stillGone(0, away, stored)).toBe(false);
  });
  it('its agent connected again, or heard from after the gone point: not gone (it may have started the instance)', () => {
    expect(stillGone(10_040, { ...away, connected: true }, stored)).toBe(false);
    expect(stillGone(10_040, { ...away, lastSeenAt: 10_500 }, stored)).toBe(false);
  });
  it('after a coordinator restart (nothing heard since start): the stored host decides', () => {
    const unknown: AgentSignals = { lastSeenAt: undefined, connected: false, streamEnd: undefined };
    expect(stillGone(10_040, unknown, stored)).toBe(true);
    // An earlier process wrote the returning agent's Hello: heard from after the gone point.
    expect(stillGone(10_040, unknown, { lastHeartbeatAt: 11_000 })).toBe(false);
  });
});

describe('nextSenderWatch (a replica losing its primary)', () => {
  it('the first look sets the baseline', () => {
    expect(nextSenderWatch(undefined, { pid: 7, streaming: false, now: 1 })).toEqual({ pid: 7, streamed: false, lostAt: 0 });
  });
  it('never streamed (catching up from the archive): losing nothing', () => {
    const s = nextSenderWatch({ pid: 7, streamed: false, lostAt: 0 }, { pid: 7, streaming: false, now: 5 });
    expect(s.lostAt).toBe(0);
  });
  it('streamed, then not: lost, dated by the first look that missed it, and kept', () => {
    const lost = nextSenderWatch({ pid: 7, streamed: true, lostAt: 0 }, { pid: 7, streaming: false, now: 5 });
    expect(lost.lostAt).toBe(5);
    expect(nextSenderWatch(lost, { pid: 7, streaming: false, now: 9 }).lostAt).toBe(5);
  });
  it('streaming again clears it', () => {
    expect(nextSenderWatch({ pid: 7, streamed: true, lostAt: 5 }, { pid: 7, streaming: true, now: 9 })).toEqual({ pid: 7, streamed: true, lostAt: 0 });
  });
  it('the replica restarted: starts over', () => {
    expect(nextSenderWatch({ pid: 7, streamed: true, lostAt: 0 }, { pid: 8, streaming: false, now: 9 })).toEqual({ pid: 8, streamed: false, lostAt: 0 });
  });
});
