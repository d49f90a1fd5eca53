import { describe, expect, it } from 'vitest';
import { decideIdleSuspend, formatIdleSuspend, type IdleFacts, type IdleTenant } from './idle-suspend.js';

const tenant = (over: Partial<IdleTenant> = {}): IdleTenant => ({ status: 'ACTIVE', runState: 'RUNNING', deleting: false, idleSuspendSeconds: 5, ...over });
const idle: IdleFacts = { routerClients: 0, busyBackends: 0, backupRunning: false };

describe('decideIdleSuspend', () => {
  it('suspends a replicated tenant only while every replica is caught up', () => {
    const caughtUp: IdleFacts = {
      ...idle,
      replicas: [
        { hostId: 'h2', caughtUp: true },
        { hostId: 'h3', caughtUp: true },
      ],
    };
    expect(decideIdleSuspend(tenant(), caughtUp, 0, 60_000)).toMatchObject({ suspend: true, lastBusyAt: 0 });
    const behind = decideIdleSuspend(
      tenant(),
      {
        ...idle,
        replicas: [
          { hostId: 'h2', caughtUp: true },
          { hostId: 'h3', caughtUp: false },
        ],
      },
      0,
      60_000,
    );
    expect(behind).toEqual({ lastBusyAt: 60_000, suspend: false, reason: 'the replica on h3 is not caught up' });
    const unknown = decideIdleSuspend(tenant(), { ...idle, replicas: [{ hostId: 'h2', caughtUp: undefined }] }, 0, 60_000);
    expect(unknown).toMatchObject({ suspend: false, reason: 'no recent health report of the replica on h2' });
  });

  it('suspends only after the whole interval idle, counted from the first idle sight', () => {
    const first = decideIdleSuspend(tenant(), idle, undefined, 1_000);
    expect(first).toMatchObject({ lastBusyAt: 1_000, suspend: false });
    expect(decideIdleSuspend(tenant(), idle, first.lastBusyAt, 5_999).suspend).toBe(false);
    const due = decideIdleSuspend(tenant(), idle, first.lastBusyAt, 6_000);
    expect(due).toEqual({ lastBusyAt: 1_000, suspend: true, reason: 'idle for 5s (policy 5s)' });
  });

  it('restarts the interval on any sign of work', () => {
    const cases: [IdleFacts, RegExp][] = [
      [{ ...idle, routerClients: 2 }, /2 client\(s\) at the routers/],
      [{ ...idle, busyBackends: 1 }, /1 busy backend/],
      [{ ...idle, backupRunning: true }, /backup/],
      [{ ...idle, routerClients: undefined }, /has not reported/],
      [{ ...idle, busyBackends: undefined }, /no recent health/],
    ];
    for (const [facts, why] of cases) {
      const d = decideIdleSuspend(tenant(), facts, 0, 60_000);
      expect(d.suspend).toBe(false);
      expect(d.lastBusyAt).toBe(60_000);
      expect(d.reason).toMatch(why);
    }
  });

  it('never suspends without a policy, or a tenant that is not ACTIVE and running', () => {
    for (const t of [
      tenant({ idleSuspendSeconds: 0 }),
      tenant({ idleSuspendSeconds: undefined }),
      tenant({ status: 'IN_PROGRESS' }),
      tenant({ status: 'SUSPENDED' }),
      tenant({ runState: 'STOPPED' }),
      tenant({ deleting: true }),
    ]) {
      const d = decideIdleSuspend(t, idle, 0, 1_000_000);
      expect(d).toMatchObject({ suspend: false, lastBusyAt: 1_000_000 });
    }
  });
});

describe('formatIdleSuspend', () => {
  it('prints the shortest whole unit', () => {
    expect([0, undefined, 5, 90, 300, 7200].map(formatIdleSuspend)).toEqual(['off', 'off', '5s', '90s', '5m', '2h']);
  });
});
