import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LEASE_TIMINGS as T,
  acceptEpoch,
  actUntil,
  decideLease,
  mayAct,
  nextLeadership,
  validateLeaseTimings,
  leaseTimingsFor,
  type Leadership,
  type LeaseRow,
} from './leader-lease.js';

const empty: LeaseRow = { holder: '', address: '', epoch: 0, expiresAt: 0 };
const a = { holder: 'c1/aaa', address: '127.0.0.1:7400', heldEpoch: 0 };
const b = { holder: 'c2/bbb', address: '127.0.0.2:7400', heldEpoch: 0 };

describe('decideLease', () => {
  it('grants a never-held lease with epoch 1', () => {
    expect(decideLease(empty, a, 1000, T)).toEqual({ kind: 'acquire', next: { holder: a.holder, address: a.address, epoch: 1, expiresAt: 1000 + T.ttlMs } });
  });

  it('renews the holder at the same epoch while live, and makes others follow', () => {
    const row: LeaseRow = { holder: a.holder, address: a.address, epoch: 4, expiresAt: 5000 };
    expect(decideLease(row, { ...a, heldEpoch: 4 }, 4999, T)).toEqual({ kind: 'renew', next: { ...row, expiresAt: 4999 + T.ttlMs } });
    expect(decideLease(row, b, 4999, T)).toEqual({ kind: 'follow', leader: row, lost: false });
  });

  it('hands a lease that ran out to the next asker with the next epoch, at the exact expiry too', () => {
    const row: LeaseRow = { holder: a.holder, address: a.address, epoch: 4, expiresAt: 5000 };
    expect(decideLease(row, b, 5000, T)).toMatchObject({ kind: 'acquire', next: { holder: b.holder, epoch: 5 } });
  });

  it('gives its own lapsed lease back to the old holder only under a new epoch', () => {
    const row: LeaseRow = { holder: a.holder, address: a.address, epoch: 4, expiresAt: 5000 };
    expect(decideLease(row, { ...a, heldEpoch: 4 }, 6000, T)).toMatchObject({ kind: 'acquire', next: { epoch: 5 } });
  });

  it('tells a holder that was overtaken that it lost', () => {
    const row: LeaseRow = { holder: b.holder, address: b.address, epoch: 5, expiresAt: 9000 };
    expect(decideLease(row, { ...a, heldEpoch: 4 }, 6000, T)).toEqual({ kind: 'follow', leader: row, lost: true });
  });

  it('does not renew a live lease for the same holder name at another epoch', () => {
    const row: LeaseRow = { holder: a.holder, address: a.address, epoch: 4, expiresAt: 5000 };
    expect(decideLease(row, { ...a, heldEpoch: 3 }, 4000, T).kind).toBe('follow');
  });
});

describe('leadership', () => {
  const follower: Leadership = { role: 'follower', leader: undefined };

  it('leads from an acquisition until the lease less the margin, counted from when it was sent', () => {
    const d = decideLease(empty, a, 10_000, T);
    const l = nextLeadership(follower, d, 1000, 1100, T);
    expect(l).toEqual({ role: 'leader', epoch: 1, actUntil: actUntil(1000, T) });
    expect(mayAct(l, 1000 + T.ttlMs - T.safetyMarginMs - 1)).toBe(true);
    expect(mayAct(l, 1000 + T.ttlMs - T.safetyMarginMs)).toBe(false);
  });

  it('keeps leading through failed renewals until the local deadline, then steps down on its own', () => {
    const l: Leadership = { role: 'leader', epoch: 3, actUntil: 5000 };
    expect(nextLeadership(l, undefined, 4000, 4999, T)).toBe(l);
    expect(nextLeadership(l, undefined, 4500, 5000, T)).toEqual({ role: 'follower', leader: undefined });
  });

  it('steps down at once when the row names someone else', () => {
    const row: LeaseRow = { holder: b.holder, address: b.address, epoch: 4, expiresAt: 9000 };
    const l: Leadership = { role: 'leader', epoch: 3, actUntil: 5000 };
    expect(nextLeadership(l, { kind: 'follow', leader: row, lost: true }, 4000, 4001, T)).toEqual({ role: 'follower', leader: row });
  });

  it('does not act on a grant whose answer came back after the local deadline', () => {
    const d = decideLease(empty, a, 10_000, T);
    expect(nextLeadership(follower, d, 1000, 1000 + T.ttlMs, T).role).toBe('follower');
  });

  it('takes over well under 5 s after a leader dies with the default timings', () => {
    // Leader renewed at store time 0 and died; a follower asks every interval, at worst just before expiry.
    let now = T.ttlMs - 1;
    const row: LeaseRow = { holder: a.holder, address: a.address, epoch: 1, expiresAt: T.ttlMs };
    while (decideLease(row, b, now, T).kind !== 'acquire') now += T.renewIntervalMs;
    expect(now).toBeLessThanOrEqual(T.ttlMs + T.renewIntervalMs);
    expect(now).toBeLessThan(5000);
  });
});

describe('validateLeaseTimings', () => {
  it('accepts the defaults and refuses a renew interval that does not fit twice', () => {
    expect(validateLeaseTimings(T)).toBeUndefined();
    expect(validateLeaseTimings({ ttlMs: 1000, renewIntervalMs: 500, safetyMarginMs: 100 })).toMatch(/at least twice/);
    expect(validateLeaseTimings({ ttlMs: 0, renewIntervalMs: 1, safetyMarginMs: 0 })).toMatch(/positive/);
  });
});

describe('leaseTimingsFor', () => {
  it('keeps the proportions of the defaults', () => {
    expect(leaseTimingsFor(2000)).toEqual(T);
    expect(leaseTimingsFor(10_000)).toEqual({ ttlMs: 10_000, renewIntervalMs: 2500, safetyMarginMs: 1250 });
    expect(validateLeaseTimings(leaseTimingsFor(1001))).toBeUndefined();
  });
  it('refuses a lease that cannot be renewed', () => {
    expect(() => leaseTimingsFor(0)).toThrow(/does not work/);
    expect(() => leaseTimingsFor(2.5)).toThrow(/whole milliseconds/);
  });
});

describe('acceptEpoch', () => {
  it('refuses an older epoch and raises the bar on a newer one', () => {
    expect(acceptEpoch(0, 0)).toEqual({ accept: true, newestSeen: 0 });
    expect(acceptEpoch(3, 4)).toEqual({ accept: true, newestSeen: 4 });
    expect(acceptEpoch(4, 4)).toEqual({ accept: true, newestSeen: 4 });
    expect(acceptEpoch(4, 3)).toEqual({ accept: false, newestSeen: 4 });
    expect(acceptEpoch(4, 0)).toEqual({ accept: false, newestSeen: 4 });
  });
});
