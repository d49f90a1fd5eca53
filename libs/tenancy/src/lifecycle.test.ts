import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransitionError } from './errors.js';
import { TENANT_TRANSITIONS, assertTransition, canTransition, deriveTenantStatus, type PlacementView } from './lifecycle.js';
import { HOST_STATES, INSTANCE_ROLES, REALIZATIONS, TENANT_STATUSES, type TenantStatus } from './statuses.js';
import { aPlacement } from './testing/builders.js';

describe('TENANT_TRANSITIONS', () => {
  it('covers every status and only names statuses', () => {
    expect(Object.keys(TENANT_TRANSITIONS).sort()).toEqual([...TENANT_STATUSES].sort());
    for (const targets of Object.values(TENANT_TRANSITIONS)) {
      for (const to of targets) expect(TENANT_STATUSES).toContain(to);
    }
  });

  it('allows staying in any status', () => {
    for (const s of TENANT_STATUSES) expect(canTransition(s, s)).toBe(true);
  });

  it('checks every pair against the table', () => {
    for (const from of TENANT_STATUSES) {
      for (const to of TENANT_STATUSES) {
        const allowed = from === to || TENANT_TRANSITIONS[from].includes(to);
        expect(canTransition(from, to)).toBe(allowed);
        if (allowed) expect(() => assertTransition(from, to)).not.toThrow();
        else expect(() => assertTransition(from, to)).toThrow(TransitionError);
      }
    }
  });

  it('makes DELETING terminal and reachable from everywhere else', () => {
    expect(TENANT_TRANSITIONS.DELETING).toEqual([]);
    for (const s of TENANT_STATUSES) if (s !== 'DELETING') expect(canTransition(s, 'DELETING')).toBe(true);
  });

  it('suspends only ACTIVE tenants (or puts back one whose wake by a move failed) and wakes them through IN_PROGRESS or a move', () => {
    const into = TENANT_STATUSES.filter((s) => s !== 'SUSPENDED' && canTransition(s, 'SUSPENDED'));
    expect(into).toEqual(['ACTIVE', 'MOVING']);
    expect(canTransition('SUSPENDED', 'IN_PROGRESS')).toBe(true);
    expect(canTransition('SUSPENDED', 'MOVING')).toBe(true);
    expect(canTransition('SUSPENDED', 'ACTIVE')).toBe(false);
  });

  it('returns to NEW only from states that never held data, or by an operator from UNAVAILABLE', () => {
    const into = TENANT_STATUSES.filter((s) => s !== 'NEW' && canTransition(s, 'NEW'));
    expect(into.sort()).toEqual(['ERROR', 'IN_PROGRESS', 'UNAVAILABLE']);
  });

  it('reports the allowed targets in the error', () => {
    expect(() => assertTransition('STOPPED', 'SUSPENDED')).toThrow(/from STOPPED it can go to: IN_PROGRESS, ACTIVE/);
  });
});

const primary = (over: Partial<PlacementView> = {}): PlacementView => aPlacement({ hostId: 'h1', ...over });
const replica = (over: Partial<PlacementView> = {}): PlacementView => aPlacement({ hostId: 'h2', role: 'REPLICA', ...over });
const derive = (current: TenantStatus, placements: PlacementView[], extra: { runState?: 'RUNNING' | 'STOPPED'; deleting?: boolean } = {}) =>
  deriveTenantStatus({ current, runState: extra.runState ?? 'RUNNING', deleting: extra.deleting ?? false, placements });

describe('deriveTenantStatus', () => {
  it('NEW with no placements', () => {
    expect(derive('NEW', [])).toEqual({ status: 'NEW', reason: 'waiting to be placed on a host' });
    expect(derive('IN_PROGRESS', []).status).toBe('NEW');
  });

  it('UNAVAILABLE when a tenant that may hold data loses every placement', () => {
    expect(derive('ACTIVE', [])).toMatchObject({ status: 'UNAVAILABLE', reason: expect.stringContaining('accept_data_loss') });
  });

  it('IN_PROGRESS until every placement is realized', () => {
    expect(derive('NEW', [primary({ realization: 'PENDING' }), replica({ realization: 'PENDING' })])).toEqual({
      status: 'IN_PROGRESS',
      reason: 'waiting for 2 of 2 placements to be realized',
    });
    expect(derive('IN_PROGRESS', [primary(), replica({ realization: 'PENDING' })]).reason).toBe('waiting for 1 of 2 placements to be realized');
  });

  it('ACTIVE when all realized and the primary healthy', () => {
    expect(derive('IN_PROGRESS', [primary(), replica()])).toEqual({ status: 'ACTIVE', reason: '' });
  });

  it('stays ACTIVE with an unhealthy replica, and says so', () => {
    expect(derive('ACTIVE', [primary(), replica({ healthy: false })])).toEqual({ status: 'ACTIVE', reason: 'replica on host h2 is not healthy' });
    expect(derive('ACTIVE', [primary(), replica({ hostState: 'DOWN' })]).status).toBe('ACTIVE');
  });

  it('waits for an unhealthy primary that never served, errors on one that did', () => {
    expect(derive('IN_PROGRESS', [primary({ healthy: false })])).toEqual({
      status: 'IN_PROGRESS',
      reason: 'waiting for the primary on host h1 to accept connections',
    });
    expect(derive('ACTIVE', [primary({ healthy: false })])).toEqual({
      status: 'ERROR',
      reason: "primary on host h1 is not healthy: it runs but does not accept connections; see its agent's log on h1",
    });
    expect(derive('ERROR', [primary({ healthy: false })]).status).toBe('ERROR');
  });

  it('ERROR with the failed placement reason and what to do, once retries kept failing', () => {
    expect(derive('IN_PROGRESS', [primary(), replica({ realization: 'FAILED', reason: 'initdb: disk full' })])).toEqual({
      status: 'ERROR',
      reason:
        "initdb: disk full (failed 3 times in a row on host h2; still retried with backoff): see the agent's log on h2 and fix the cause, or delete the tenant",
    });
    expect(derive('IN_PROGRESS', [primary({ realization: 'FAILED', failures: 5 })]).reason).toMatch(/^instance on host h1 failed \(failed 5 times/);
  });

  it('IN_PROGRESS with the reason while a failure is retried with backoff (an expected wait)', () => {
    expect(derive('IN_PROGRESS', [primary({ realization: 'FAILED', reason: 'port 21450 in use', failures: 1 })])).toEqual({
      status: 'IN_PROGRESS',
      reason: 'retrying on host h1 (failed 1 time(s), retried with backoff): port 21450 in use',
    });
    expect(derive('ACTIVE', [primary(), replica({ realization: 'FAILED', failures: 2 })]).status).toBe('IN_PROGRESS');
    expect(derive('IN_PROGRESS', [primary(), replica({ realization: 'FAILED', failures: 3 })]).status).toBe('ERROR');
  });

  it('IN_PROGRESS while the agent (re)starts an unhealthy primary, also one that served', () => {
    expect(derive('ACTIVE', [primary({ healthy: false, instanceState: 'CRASHED' })])).toEqual({
      status: 'IN_PROGRESS',
      reason: 'primary on host h1 stopped unexpectedly and is being restarted by its agent',
    });
    expect(derive('ERROR', [primary({ healthy: false, instanceState: 'STARTING' })]).status).toBe('IN_PROGRESS');
    expect(derive('ACTIVE', [primary({ healthy: false, instanceState: 'RUNNING' })]).status).toBe('ERROR');
  });

  it('DELETING when deleting, whatever else holds, and DELETING stays', () => {
    expect(derive('ACTIVE', [primary()], { deleting: true })).toEqual({ status: 'DELETING', reason: 'deletion requested' });
    expect(derive('DELETING', [])).toMatchObject({ status: 'DELETING' });
  });

  it('STOPPING then STOPPED for run state STOPPED', () => {
    expect(derive('ACTIVE', [primary({ realization: 'PENDING' })], { runState: 'STOPPED' })).toEqual({
      status: 'STOPPING',
      reason: 'waiting for 1 of 1 instances to stop',
    });
    expect(derive('STOPPING', [primary()], { runState: 'STOPPED' })).toEqual({ status: 'STOPPED', reason: 'stopped on request' });
    expect(derive('STOPPING', [primary({ realization: 'FAILED', reason: 'pg_ctl stop timed out' })], { runState: 'STOPPED' })).toMatchObject({
      status: 'ERROR',
      reason: expect.stringMatching(/^pg_ctl stop timed out \(failed 3 times in a row/),
    });
    expect(derive('STOPPING', [primary({ realization: 'FAILED', failures: 1 })], { runState: 'STOPPED' }).status).toBe('IN_PROGRESS');
  });

  it('FAILING_OVER when the primary host is down and a realized healthy replica exists', () => {
    expect(derive('ACTIVE', [primary({ hostState: 'DOWN' }), replica()])).toEqual({
      status: 'FAILING_OVER',
      reason: 'primary host h1 is down; the replica on h2 can take over',
    });
  });

  it('UNAVAILABLE, not FAILING_OVER, when a single-node tenant loses its host during a move (its copy is no heir), and ACTIVE again once the host is back', () => {
    const during = deriveTenantStatus({
      current: 'MOVING',
      runState: 'RUNNING',
      deleting: false,
      placements: [primary({ hostState: 'DOWN' }), replica()],
      replicasTakeOver: false,
    });
    expect(during).toEqual({ status: 'UNAVAILABLE', reason: 'primary host h1 is down; a single-node tenant waits for its host to return' });
    // Back: nothing sticky holds it (a FAILING_OVER would wait for a failover that nobody runs).
    const back = deriveTenantStatus({
      current: during.status,
      runState: 'RUNNING',
      deleting: false,
      placements: [primary(), replica()],
      replicasTakeOver: false,
    });
    expect(back.status).toBe('ACTIVE');
  });

  it('UNAVAILABLE when the primary host is down and no replica can take over', () => {
    const down = primary({ hostState: 'DOWN' });
    for (const placements of [
      [down],
      [down, replica({ healthy: false })],
      [down, replica({ hostState: 'UNREACHABLE' })],
      [down, replica({ realization: 'PENDING' })],
    ]) {
      expect(derive('ACTIVE', placements)).toEqual({ status: 'UNAVAILABLE', reason: 'primary host h1 is down and no replica can take over' });
    }
  });

  it('keeps the status while the primary host is only unreachable', () => {
    expect(derive('ACTIVE', [primary({ hostState: 'UNREACHABLE' })])).toMatchObject({ status: 'ACTIVE', reason: expect.stringContaining('unreachable') });
    expect(derive('STOPPED', [primary({ hostState: 'UNREACHABLE' })]).status).toBe('IN_PROGRESS');
  });

  it('waits for a primary during failover', () => {
    expect(derive('FAILING_OVER', [replica()]).status).toBe('FAILING_OVER');
    expect(derive('IN_PROGRESS', [replica()])).toEqual({ status: 'IN_PROGRESS', reason: 'waiting for a primary placement' });
  });

  it('SUSPENDED stays until the coordinator wakes it, even while its host is away', () => {
    expect(derive('SUSPENDED', [primary()])).toEqual({ status: 'SUSPENDED', reason: 'suspended while idle' });
    expect(derive('SUSPENDED', [primary({ hostState: 'DOWN' })]).status).toBe('SUSPENDED');
    expect(derive('SUSPENDED', [primary({ hostState: 'UNREACHABLE' })]).reason).toMatch(/its host .* is UNREACHABLE/);
  });

  const placementArb = fc.record({
    hostId: fc.constantFrom('h1', 'h2', 'h3'),
    role: fc.constantFrom(...INSTANCE_ROLES),
    realization: fc.constantFrom(...REALIZATIONS),
    hostState: fc.constantFrom(...HOST_STATES),
    healthy: fc.boolean(),
    reason: fc.option(fc.constantFrom('', 'boom'), { nil: undefined }),
  });
  const inputArb = fc.record({
    current: fc.constantFrom(...TENANT_STATUSES),
    runState: fc.constantFrom('RUNNING' as const, 'STOPPED' as const),
    deleting: fc.boolean(),
    placements: fc.array(placementArb, { maxLength: 4 }),
  });

  it('only ever derives a transition the table allows', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const { status } = deriveTenantStatus(input);
        expect(canTransition(input.current, status), `${input.current} -> ${status}`).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('is stable: deriving again from the derived status gives the same status', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const first = deriveTenantStatus(input);
        expect(deriveTenantStatus({ ...input, current: first.status })).toEqual(first);
      }),
      { numRuns: 5000 },
    );
  });
});
