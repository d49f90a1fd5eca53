import { describe, expect, it } from 'vitest';
import type { AgentSignals } from './failover-signals.js';
import {
  hostLivenessWithBacklog,
  readAdjusted,
  startGraceHolds,
  startProgress,
  type OwnDelay,
  type ReadState,
  type StartProgress,
} from './liveness-backlog.js';

const policy = { ttlMs: 3000, graceMs: 4000, confirmMs: 5000, startGraceMaxMs: 120_000, startBacklogMaxMs: 280_000 };
const grace = { ttlMs: 3000, graceMs: 4000, maxMs: 120_000, backlogMaxMs: 280_000 };
const idle: ReadState = { busySince: undefined, resumedAt: undefined };
const noLag: OwnDelay = { loopLagMs: 0, maxCreditMs: 3000 };
/** Started at 0, 200 hosts expected. */
const storm = (helloed: number, lastHelloAt?: number): StartProgress => ({ ...startProgress(0, 200), helloed, lastHelloAt });
/** Every host said Hello by `lastHelloAt`; `catchingUp` of them still wait for their full set or first report. */
const behind = (catchingUp: number, lastHelloAt: number, lastCaughtUpAt?: number): StartProgress => ({
  ...storm(200, lastHelloAt),
  catchingUp,
  lastCaughtUpAt,
});
const done = storm(200, 1000);
const connected = (lastSeenAt: number): AgentSignals => ({ lastSeenAt, connected: true, streamEnd: undefined });

describe('startGraceHolds', () => {
  it('holds while expected hosts are missing and Hellos keep arriving', () => {
    expect(startGraceHolds(storm(0, 0), 13_999, grace)).toBe(true);
    expect(startGraceHolds(storm(150, 60_000), 66_000, grace)).toBe(true);
  });
  it('ends once every expected host said Hello', () => {
    expect(startGraceHolds(storm(200, 5_000), 5_001, grace)).toBe(false);
    expect(startGraceHolds(startProgress(0), 1, grace)).toBe(false);
  });
  it('ends when no reconnect was seen for twice ttl + grace: the hosts still missing are really gone', () => {
    expect(startGraceHolds(storm(0, 0), 14_001, grace)).toBe(false);
    expect(startGraceHolds(storm(199, 20_000), 34_000, grace)).toBe(true);
    expect(startGraceHolds(storm(199, 20_000), 34_001, grace)).toBe(false);
  });
  it("holds until its bound while no agent has reconnected at all (the fault is ours, not every host's)", () => {
    expect(startGraceHolds(storm(0), 60_000, grace)).toBe(true);
    expect(startGraceHolds(storm(0), 120_000, grace)).toBe(false);
  });
  it('never lasts past its bound, however slowly the storm is read', () => {
    expect(startGraceHolds(storm(100, 119_000), 119_999, grace)).toBe(true);
    expect(startGraceHolds(storm(100, 119_500), 120_000, grace)).toBe(false);
  });
});

describe('startGraceHolds after the last Hello (hosts catching up with their full sets and first reports)', () => {
  it('holds while hosts still catch up and one caught up within twice ttl + grace', () => {
    // Every host said Hello at 30 s: the old rule ended the grace there.
    expect(startGraceHolds(behind(0, 30_000), 30_001, grace)).toBe(false);
    expect(startGraceHolds(behind(600, 30_000), 44_000, grace)).toBe(true);
    expect(startGraceHolds(behind(400, 30_000, 150_000), 164_000, grace)).toBe(true);
  });
  it('ends once every host caught up', () => {
    expect(startGraceHolds(behind(0, 30_000, 150_000), 150_001, grace)).toBe(false);
  });
  it('ends when no host caught up for twice ttl + grace (a host that never reports, a dead one among them)', () => {
    expect(startGraceHolds(behind(1, 30_000, 100_000), 114_000, grace)).toBe(true);
    expect(startGraceHolds(behind(1, 30_000, 100_000), 114_001, grace)).toBe(false);
  });
  it("does not count the coordinator's own stall as the backlog's lack of progress", () => {
    // A 30 s stall: what it held up is read after it, not yet handled.
    expect(startGraceHolds(behind(300, 30_000, 100_000), 130_000, grace, 30_000)).toBe(true);
    expect(startGraceHolds(behind(300, 30_000, 100_000), 130_000, grace, 0)).toBe(false);
  });
  it('never lasts past its own hard bound, however steadily hosts catch up', () => {
    expect(startGraceHolds(behind(10, 30_000, 279_000), 279_999, grace)).toBe(true);
    expect(startGraceHolds(behind(10, 30_000, 279_999), 280_000, grace)).toBe(false);
  });
  it('never holds again once it ended', () => {
    expect(startGraceHolds({ ...behind(600, 30_000, 40_000), endedAt: 35_000 }, 41_000, grace)).toBe(false);
    expect(startGraceHolds({ ...storm(100, 40_000), endedAt: 35_000 }, 41_000, grace)).toBe(false);
  });
  it('is no backlog on a store that knew no host (hosts registering for the first time are judged at once)', () => {
    expect(startGraceHolds({ ...startProgress(0), catchingUp: 3, lastHelloAt: 1000 }, 2000, grace)).toBe(false);
  });
});

describe('readAdjusted', () => {
  it('changes nothing when the coordinator keeps up', () => {
    expect(readAdjusted(connected(1000), idle, 5000, noLag)).toEqual({ signals: connected(1000), now: 5000 });
  });
  it('takes the event loop lag off now, up to the credit bound', () => {
    expect(readAdjusted(connected(1000), idle, 5000, { loopLagMs: 1500, maxCreditMs: 3000 }).now).toBe(3500);
    expect(readAdjusted(connected(1000), idle, 9000, { loopLagMs: 60_000, maxCreditMs: 3000 }).now).toBe(6000);
  });
  it('counts a host as heard while its previous message is still being handled, up to the bound', () => {
    expect(readAdjusted(connected(1000), { busySince: 1000, resumedAt: undefined }, 3000, noLag).signals.lastSeenAt).toBe(3000);
    expect(readAdjusted(connected(1000), { busySince: 1000, resumedAt: undefined }, 10_000, noLag).signals.lastSeenAt).toBe(4000);
  });
  it('counts silence from when reading resumed after such a wait', () => {
    expect(readAdjusted(connected(1000), { busySince: undefined, resumedAt: 2500 }, 6000, noLag).signals.lastSeenAt).toBe(2500);
    // The wait's credit is bounded too.
    expect(readAdjusted(connected(1000), { busySince: undefined, resumedAt: 9000 }, 12_000, noLag).signals.lastSeenAt).toBe(4000);
  });
  it('leaves a stream that ended as it is (the broken-stream fast path is never slowed)', () => {
    const broken: AgentSignals = { lastSeenAt: 1000, connected: false, streamEnd: { how: 'reset', at: 1200 } };
    expect(readAdjusted(broken, { busySince: undefined, resumedAt: 1500 }, 5000, { loopLagMs: 2000, maxCreditMs: 3000 })).toEqual({
      signals: broken,
      now: 5000,
    });
  });
});

describe('hostLivenessWithBacklog', () => {
  it('keeps every host as stored during the start grace, even one silent for longer than ttl + grace', () => {
    expect(hostLivenessWithBacklog(connected(0), idle, 'READY', 30_000, policy, storm(150, 29_000), noLag)).toMatchObject({
      state: 'READY',
      reason: expect.stringMatching(/150 of 200 hosts back/),
    });
    expect(hostLivenessWithBacklog(connected(0), idle, 'DOWN', 30_000, policy, storm(150, 29_000), noLag).state).toBe('DOWN');
  });
  it('outside the grace a silent host is judged as before: UNREACHABLE after ttl, DOWN after ttl + grace', () => {
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 13_000, policy, done, noLag).state).toBe('READY');
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 13_001, policy, done, noLag).state).toBe('UNREACHABLE');
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 17_001, policy, done, noLag).state).toBe('DOWN');
  });
  it('keeps a host silent for longer than ttl + grace as it is while the fleet still catches up', () => {
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 60_000, policy, behind(500, 30_000, 55_000), noLag)).toMatchObject({
      state: 'READY',
      reason: expect.stringMatching(/500 catching up/),
    });
  });
  it('a host that died while the fleet catches up is DOWN once the backlog stops moving or at the hard bound', () => {
    // Silent since 40 s; the backlog stopped moving at 55 s.
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 69_000, policy, behind(1, 30_000, 55_000), noLag).state).toBe('READY');
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 69_001, policy, behind(1, 30_000, 55_000), noLag).state).toBe('DOWN');
    // A backlog still moving at the hard bound.
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 280_000, policy, behind(50, 30_000, 279_900), noLag).state).toBe('DOWN');
  });
  it("counts a connected host's silence from the grace's end, a broken stream's from its break", () => {
    const ended = { ...done, endedAt: 60_000 };
    // Silent since 40 s (heartbeats unread in the backlog's last stretch): not judged at the grace's end.
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 60_001, policy, ended, noLag).state).toBe('READY');
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 63_001, policy, ended, noLag).state).toBe('UNREACHABLE');
    expect(hostLivenessWithBacklog(connected(40_000), idle, 'READY', 67_001, policy, ended, noLag).state).toBe('DOWN');
    const broken: AgentSignals = { lastSeenAt: 40_000, connected: false, streamEnd: { how: 'reset', at: 50_000 } };
    expect(hostLivenessWithBacklog(broken, idle, 'READY', 60_001, policy, ended, noLag).state).toBe('DOWN');
  });
  it('a host lost during a storm that stopped is judged once no reconnect came for twice ttl + grace', () => {
    const stalled = storm(199, 20_000);
    expect(hostLivenessWithBacklog(connected(0), idle, 'READY', 34_000, policy, stalled, noLag).state).toBe('READY');
    expect(hostLivenessWithBacklog(connected(0), idle, 'READY', 34_001, policy, stalled, noLag).state).toBe('DOWN');
  });
  it("the coordinator's own lag delays the verdict by at most the credit bound", () => {
    const lagging = { loopLagMs: 2000, maxCreditMs: 3000 };
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 15_000, policy, done, lagging).state).toBe('READY');
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 15_001, policy, done, lagging).state).toBe('UNREACHABLE');
    const wedged = { loopLagMs: 600_000, maxCreditMs: 3000 };
    expect(hostLivenessWithBacklog(connected(10_000), idle, 'READY', 20_001, policy, done, wedged).state).toBe('DOWN');
  });
  it('a broken stream outside the grace is UNREACHABLE at once and DOWN after confirmMs, whatever the lag', () => {
    const broken: AgentSignals = { lastSeenAt: 9_900, connected: false, streamEnd: { how: 'reset', at: 10_000 } };
    const lagging = { loopLagMs: 2000, maxCreditMs: 3000 };
    expect(hostLivenessWithBacklog(broken, idle, 'READY', 10_001, policy, done, lagging).state).toBe('UNREACHABLE');
    expect(hostLivenessWithBacklog(broken, idle, 'READY', 15_000, policy, done, lagging).state).toBe('DOWN');
  });
});
