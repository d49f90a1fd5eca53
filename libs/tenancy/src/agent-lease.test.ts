import { describe, expect, it } from 'vitest';
import { leaseExpired, leaseHoldReason, renewedLeaseDeadline, type LeaseHoldInput } from './agent-lease.js';

describe('renewedLeaseDeadline', () => {
  it('counts from when the answered message was sent', () => {
    expect(renewedLeaseDeadline(0, 1_000, 5_000)).toBe(6_000);
  });
  it('never moves back (a late answer to an older heartbeat)', () => {
    expect(renewedLeaseDeadline(8_000, 1_000, 5_000)).toBe(8_000);
  });
  it('a lease of 0 (no lease) changes nothing', () => {
    expect(renewedLeaseDeadline(8_000, 9_000, 0)).toBe(8_000);
  });
});

describe('leaseHoldReason (the agent lease rule)', () => {
  const primary: LeaseHoldInput = {
    runState: 'RUNNING',
    role: 'PRIMARY',
    fencedByCommand: false,
    fenceOnLeaseExpiry: true,
    leaseDeadline: 10_000,
    running: true,
    confirmed: true,
    now: 9_000,
  };
  it('a replica is never held', () => {
    expect(leaseHoldReason({ ...primary, role: 'REPLICA', leaseDeadline: 0, confirmed: false, fencedByCommand: true })).toBe('');
  });
  it('a stopped spec is not held (it stops anyway)', () => {
    expect(leaseHoldReason({ ...primary, runState: 'STOPPED', fencedByCommand: true })).toBe('');
  });
  it('a primary fenced by command stays stopped', () => {
    expect(leaseHoldReason({ ...primary, fencedByCommand: true })).toBe('fenced');
  });
  it('a primary without replicas ignores the lease', () => {
    expect(leaseHoldReason({ ...primary, fenceOnLeaseExpiry: false, leaseDeadline: 0, confirmed: false, running: false })).toBe('');
  });
  it('a primary under the rule stops when the lease is over', () => {
    expect(leaseHoldReason({ ...primary, now: 10_000 })).toMatch(/lease .* expired/);
  });
  it('a stopped primary starts only once the coordinator confirmed it', () => {
    expect(leaseHoldReason({ ...primary, running: false, confirmed: false })).toMatch(/confirm/);
    expect(leaseHoldReason({ ...primary, running: false, confirmed: true })).toBe('');
  });
  it('a running primary goes on while the lease holds', () => {
    expect(leaseHoldReason({ ...primary, confirmed: false })).toBe('');
  });
  it('leaseExpired at and after the deadline', () => {
    expect(leaseExpired(10_000, 9_999)).toBe(false);
    expect(leaseExpired(10_000, 10_000)).toBe(true);
  });
});
