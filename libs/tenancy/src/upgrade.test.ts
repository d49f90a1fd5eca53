import { describe, expect, it } from 'vitest';
import { decideUpgrade, type UpgradeFacts, type UpgradeProgress } from './upgrade.js';

const T0 = 1_000_000;
const progress = (over: Partial<UpgradeProgress> = {}): UpgradeProgress => ({
  phase: 'creating',
  fromHostId: 'h1',
  toHostId: 'h2',
  fromMajor: 15,
  toMajor: 18,
  startedAt: T0,
  phaseStartedAt: T0,
  copyDeadline: T0 + 600_000,
  switchAttempts: 0,
  keepUntil: 0,
  ...over,
});
const facts = (over: Partial<UpgradeFacts> = {}): UpgradeFacts => ({
  cancelled: false,
  target: { realized: true, healthy: true, failedReason: '' },
  sourcePrepared: true,
  subscribed: true,
  sync: { tables: 3, ready: 3 },
  held: false,
  writersBlocked: false,
  catchUp: undefined,
  routeOnTarget: false,
  oldStopped: false,
  oldReady: false,
  request: 'none',
  ...over,
});
const policy = { maxSwitchAttempts: 3 };
const decide = (p: Partial<UpgradeProgress>, f: Partial<UpgradeFacts>, now = T0 + 1000) => decideUpgrade(progress(p), facts(f), policy, now);

describe('decideUpgrade', () => {
  it('prepares the source, waits for the new instance, then subscribes', () => {
    expect(decide({}, { sourcePrepared: false, target: undefined }).kind).toBe('prepare_source');
    expect(decide({}, { target: undefined })).toEqual({ kind: 'wait', reason: 'building PostgreSQL 18 on h2' });
    expect(decide({}, { target: { realized: true, healthy: false, failedReason: '' } }).kind).toBe('wait');
    expect(decide({}, {}).kind).toBe('subscribe');
  });

  it('polls the initial copy and holds the route once every table is ready', () => {
    expect(decide({ phase: 'copying' }, { subscribed: false }).kind).toBe('subscribe');
    expect(decide({ phase: 'copying' }, { sync: undefined }).kind).toBe('poll_sync');
    expect(decide({ phase: 'copying' }, { sync: { tables: 0, ready: 0 } }).kind).toBe('poll_sync');
    expect(decide({ phase: 'copying' }, { sync: { tables: 3, ready: 2 } }).kind).toBe('poll_sync');
    expect(decide({ phase: 'copying' }, {}).kind).toBe('hold');
  });

  it('switches in order: hold, block writers, catch up, move the route, drop the subscriptions, stop the old instance', () => {
    const s = { phase: 'switching' as const };
    expect(decide(s, {}).kind).toBe('hold');
    expect(decide(s, { held: true }).kind).toBe('block_writers');
    expect(decide(s, { held: true, writersBlocked: true }).kind).toBe('catch_up');
    expect(decide(s, { held: true, writersBlocked: true, catchUp: { ok: true } }).kind).toBe('switch_route');
    // Dropping the subscriptions is cleanup after the route moved, outside the hold.
    expect(decide(s, { routeOnTarget: true }).kind).toBe('drop_subscriptions');
    expect(decide(s, { routeOnTarget: true, subscribed: false }).kind).toBe('stop_old');
    expect(decide(s, { routeOnTarget: true, subscribed: false, oldStopped: true }).kind).toBe('wait');
  });

  it('gives the clients back and retries a switch that could not catch up, then abandons', () => {
    const failed = { held: true, writersBlocked: true, catchUp: { ok: false as const, reason: 'not caught up in 2000 ms' } };
    expect(decide({ phase: 'switching' }, failed)).toEqual({ kind: 'retry_switch', reason: 'not caught up in 2000 ms' });
    expect(decide({ phase: 'switching', switchAttempts: 2 }, failed)).toMatchObject({ kind: 'abandon' });
  });

  it('abandons before the switch on a failed instance, a deadline or a deleted tenant, never after the route moved', () => {
    expect(decide({}, { target: { realized: false, healthy: false, failedReason: 'initdb failed' } })).toMatchObject({
      kind: 'abandon',
      reason: expect.stringContaining('initdb failed'),
    });
    expect(decide({ phase: 'copying' }, { sync: { tables: 3, ready: 1 } }, T0 + 600_000)).toMatchObject({ kind: 'abandon' });
    expect(decide({ phase: 'copying' }, { cancelled: true })).toMatchObject({ kind: 'abandon' });
    expect(decide({ phase: 'switching' }, { held: true, cancelled: true })).toMatchObject({ kind: 'abandon' });
    // The deadline is for the copy; a switch in flight is not cut by it.
    expect(decide({ phase: 'switching' }, { held: true }, T0 + 900_000).kind).toBe('block_writers');
    expect(decide({ phase: 'switching' }, { routeOnTarget: true, cancelled: true }, T0 + 900_000).kind).toBe('drop_subscriptions');
    expect(decide({ phase: 'switching' }, { routeOnTarget: true, subscribed: false, cancelled: true }, T0 + 900_000).kind).toBe('stop_old');
  });

  it('keeps the old instance until a rollback, a finalize or the end of its retention', () => {
    const k = { phase: 'kept' as const, keepUntil: T0 + 86_400_000 };
    expect(decide(k, {}).kind).toBe('wait');
    expect(decide(k, { request: 'rollback', oldReady: true, held: true, writersBlocked: true }).kind).toBe('rollback');
    expect(decide(k, { request: 'finalize' })).toEqual({ kind: 'finalize', reason: 'finalized by the operator' });
    expect(decide(k, {}, T0 + 86_400_000)).toEqual({ kind: 'finalize', reason: 'the retention of the old instance ended' });
    expect(decide({ phase: 'kept', keepUntil: 0 }, {}, T0 + 10 * 86_400_000).kind).toBe('wait');
  });

  it('rolls back by starting the old instance first, then holding clients, blocking the new writers and moving the route', () => {
    const k = { phase: 'kept' as const, keepUntil: T0 + 86_400_000 };
    const r = { request: 'rollback' as const, subscribed: false, routeOnTarget: true, oldStopped: true };
    // No hold while the old instance starts: clients go on using the new one meanwhile.
    expect(decide(k, r).kind).toBe('start_old');
    expect(decide(k, { ...r, oldReady: true }).kind).toBe('rollback_hold');
    expect(decide(k, { ...r, oldReady: true, held: true }).kind).toBe('block_new_writers');
    expect(decide(k, { ...r, oldReady: true, held: true, writersBlocked: true }).kind).toBe('rollback');
    // The retention's end does not cut a rollback asked for.
    expect(decide(k, r, T0 + 86_400_000).kind).toBe('start_old');
  });
});
