import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLsn } from './failover-lsn.js';
import { failoverPlan, fencingState, leaseDeadline, pickPromotionCandidate, primaryFailure, type FailoverMember, type SyncQuorum } from './failover.js';

const member = (hostId: string, lsn: string, extra: Partial<FailoverMember> = {}): FailoverMember => ({
  hostId,
  role: 'REPLICA',
  hostState: 'READY',
  realized: true,
  healthy: true,
  lsn,
  timeline: 1,
  reportedAt: 1000,
  ...extra,
});
const primary = member('h1', '0/5000000', { role: 'PRIMARY', hostState: 'DOWN', healthy: false });

describe('primaryFailure', () => {
  const base = { hostId: 'h1', hostState: 'READY' as const, healthy: true, unhealthySince: undefined, now: 10_000 };
  it('a DOWN host is a failure at once', () => {
    expect(primaryFailure({ ...base, hostState: 'DOWN', healthy: true }, { unhealthyAfterMs: 5000 })).toEqual({
      failed: true,
      cause: 'host_down',
      reason: 'primary host h1 is down',
    });
  });
  it('an UNREACHABLE host is not (yet)', () => {
    expect(primaryFailure({ ...base, hostState: 'UNREACHABLE', healthy: false, unhealthySince: 0 }, { unhealthyAfterMs: 1 }).failed).toBe(false);
  });
  it('unhealthy on a READY host only past the threshold', () => {
    expect(primaryFailure({ ...base, healthy: false, unhealthySince: 6000 }, { unhealthyAfterMs: 5000 }).failed).toBe(false);
    expect(primaryFailure({ ...base, healthy: false, unhealthySince: 5000 }, { unhealthyAfterMs: 5000 })).toMatchObject({ failed: true, cause: 'unhealthy' });
    expect(primaryFailure({ ...base, healthy: true, unhealthySince: 0 }, { unhealthyAfterMs: 5000 }).failed).toBe(false);
  });
});

describe('fencing', () => {
  it('an acknowledgement fences at once', () => {
    expect(fencingState({ ackedAt: 500, leaseRenewedAt: 400, leaseMs: 5000, now: 600 })).toEqual({ fenced: true, via: 'ack', at: 500 });
  });
  it('otherwise only the lease, with its margin, does', () => {
    expect(leaseDeadline(1000, 5000)).toBe(6500);
    expect(leaseDeadline(0, 1000)).toBe(1250);
    expect(fencingState({ ackedAt: undefined, leaseRenewedAt: 1000, leaseMs: 5000, now: 6499 })).toEqual({ fenced: false, leaseExpiresAt: 6500 });
    expect(fencingState({ ackedAt: undefined, leaseRenewedAt: 1000, leaseMs: 5000, now: 6500 })).toEqual({ fenced: true, via: 'lease', at: 6500 });
  });
  it('is never fenced before the lease ran out without an ack (property)', () => {
    fc.assert(
      fc.property(fc.nat(1e9), fc.integer({ min: 1000, max: 60_000 }), fc.nat(1e6), (renewed, lease, dt) => {
        const s = fencingState({ ackedAt: undefined, leaseRenewedAt: renewed, leaseMs: lease, now: renewed + dt });
        return s.fenced ? dt > lease : dt <= lease + Math.max(250, Math.ceil(lease / 10));
      }),
    );
  });
});

describe('pickPromotionCandidate', () => {
  it('asynchronous: the most advanced healthy replica, by 64-bit LSN', () => {
    const d = pickPromotionCandidate({ members: [primary, member('h2', '0/9FF'), member('h3', '0/A00')], oldPrimaryHostId: 'h1', quorums: [], fencedAt: 0 });
    expect(d).toMatchObject({ kind: 'promote', hostId: 'h3', lsn: '0/A00' });
    const d2 = pickPromotionCandidate({
      members: [primary, member('h2', '1/0'), member('h3', '0/FFFFFFFF')],
      oldPrimaryHostId: 'h1',
      quorums: [],
      fencedAt: 0,
    });
    expect(d2).toMatchObject({ kind: 'promote', hostId: 'h2' });
  });

  it('skips unhealthy, unrealized, down and primary members; none left is "none"', () => {
    const members = [
      primary,
      member('h2', '0/9', { healthy: false }),
      member('h3', '0/9', { realized: false }),
      member('h4', '0/9', { hostState: 'UNREACHABLE' }),
    ];
    expect(pickPromotionCandidate({ members, oldPrimaryHostId: 'h1', quorums: [], fencedAt: 0 }).kind).toBe('none');
  });

  it('a higher timeline wins over a higher LSN', () => {
    const d = pickPromotionCandidate({
      members: [primary, member('h2', '0/9000', { timeline: 1 }), member('h3', '0/100', { timeline: 2 })],
      oldPrimaryHostId: 'h1',
      quorums: [],
      fencedAt: 0,
    });
    expect(d).toMatchObject({ kind: 'promote', hostId: 'h3' });
  });

  it('ANY 1 of 2: both must report after fencing; the most advanced wins', () => {
    const q: SyncQuorum[] = [{ k: 1, standbys: ['h2', 'h3'] }];
    const stale = [primary, member('h2', '0/100', { reportedAt: 2000 }), member('h3', '0/200', { reportedAt: 500 })];
    expect(pickPromotionCandidate({ members: stale, oldPrimaryHostId: 'h1', quorums: q, fencedAt: 1000 })).toMatchObject({ kind: 'wait' });
    const fresh = [primary, member('h2', '0/100', { reportedAt: 2000 }), member('h3', '0/300', { reportedAt: 2100 })];
    expect(pickPromotionCandidate({ members: fresh, oldPrimaryHostId: 'h1', quorums: q, fencedAt: 1000 })).toMatchObject({ kind: 'promote', hostId: 'h3' });
    const oneLost = [primary, member('h2', '0/100', { reportedAt: 2000 }), member('h3', '0/300', { hostState: 'DOWN' })];
    const wait = pickPromotionCandidate({ members: oneLost, oldPrimaryHostId: 'h1', quorums: q, fencedAt: 1000 });
    expect(wait.kind).toBe('wait');
    if (wait.kind === 'wait') expect(wait.reason).toMatch(/could lose acknowledged commits/);
  });

  it('ANY k of k: every standby has every commit, so a stale report is fine', () => {
    const d = pickPromotionCandidate({
      members: [primary, member('h2', '0/100', { reportedAt: 0 })],
      oldPrimaryHostId: 'h1',
      quorums: [{ k: 1, standbys: ['h2'] }],
      fencedAt: 1000,
    });
    expect(d).toMatchObject({ kind: 'promote', hostId: 'h2' });
    const outside = pickPromotionCandidate({
      members: [primary, member('h3', '0/900')],
      oldPrimaryHostId: 'h1',
      quorums: [{ k: 1, standbys: ['h2'] }],
      fencedAt: 0,
    });
    expect(outside.kind).toBe('wait');
  });

  it('a target must be eligible and not behind', () => {
    const members = [primary, member('h2', '0/100'), member('h3', '0/200')];
    expect(pickPromotionCandidate({ members, oldPrimaryHostId: 'h1', quorums: [], fencedAt: 0, toHostId: 'h3' })).toMatchObject({
      kind: 'promote',
      hostId: 'h3',
    });
    expect(pickPromotionCandidate({ members, oldPrimaryHostId: 'h1', quorums: [], fencedAt: 0, toHostId: 'h2' }).kind).toBe('wait');
    expect(pickPromotionCandidate({ members, oldPrimaryHostId: 'h1', quorums: [], fencedAt: 0, toHostId: 'h9' }).kind).toBe('none');
  });

  it('never loses an acknowledged commit under ANY k of n (property)', () => {
    // Model: the primary wrote WAL to `end`; each standby flushed up to its own position; a commit at
    // LSN c was acknowledged when at least k standbys had flushed past c. Whatever is promoted must
    // hold every acknowledged commit.
    const scenario = fc.integer({ min: 1, max: 5 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        k: fc.integer({ min: 1, max: n }),
        flushed: fc.array(fc.bigInt({ min: 0n, max: 1n << 40n }), { minLength: n, maxLength: n }),
        lost: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        staleReport: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ k, flushed, lost, staleReport }) => {
        const ids = flushed.map((_, i) => `h${i + 2}`);
        const sorted = [...flushed].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
        const acknowledged = sorted[k - 1]!; // the k-th highest flush position: everything up to it was acknowledged
        const members = flushed.map((f, i) =>
          member(ids[i]!, formatLsn(staleReport[i] ? f / 2n : f), { hostState: lost[i] ? 'DOWN' : 'READY', reportedAt: staleReport[i] ? 500 : 2000 }),
        );
        const d = pickPromotionCandidate({ members: [primary, ...members], oldPrimaryHostId: 'h1', quorums: [{ k, standbys: ids }], fencedAt: 1000 });
        if (d.kind !== 'promote') return true;
        const i = ids.indexOf(d.hostId);
        return flushed[i]! >= acknowledged && !lost[i];
      }),
      { numRuns: 2000 },
    );
  });
});

describe('failoverPlan', () => {
  it('fence first, then promote, repoint, route, rejoin', () => {
    expect(failoverPlan({ oldPrimaryHostId: 'h1', oldPrimaryReachable: false, candidateHostId: 'h3', replicaHostIds: ['h4', 'h2', 'h3'] })).toEqual([
      { step: 'fence', hostId: 'h1', via: 'lease' },
      { step: 'promote', hostId: 'h3' },
      { step: 'repoint', hostIds: ['h2', 'h4'] },
      { step: 'route', hostId: 'h3' },
      { step: 'rejoin', hostId: 'h1' },
    ]);
    expect(failoverPlan({ oldPrimaryHostId: 'h1', oldPrimaryReachable: true, candidateHostId: 'h2', replicaHostIds: ['h2'] })[0]).toEqual({
      step: 'fence',
      hostId: 'h1',
      via: 'command',
    });
  });
});
