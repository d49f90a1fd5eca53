import { describe, expect, it } from 'vitest';
import { checkMove, decideMove, type MoveFacts, type MoveProgress, type MoveRequestFacts } from './move.js';
import { aHost, res } from './testing/builders.js';

function request(over: Partial<MoveRequestFacts> = {}): MoveRequestFacts {
  return {
    tenantId: 't',
    status: 'ACTIVE',
    resources: res(),
    placement: {},
    members: [{ hostId: 'a', role: 'PRIMARY' }],
    memberHostId: '',
    toHostId: 'b',
    target: aHost('b'),
    targetConnected: true,
    busy: false,
    ...over,
  };
}

function refusal(over: Partial<MoveRequestFacts>): string | undefined {
  const r = checkMove(request(over));
  return 'refusal' in r ? r.refusal.code : undefined;
}

describe('checkMove', () => {
  it('moves the primary of a single-node tenant to a READY host with room', () => {
    expect(checkMove(request())).toEqual({ member: { hostId: 'a', role: 'PRIMARY' } });
  });

  it('refuses the same host, an unknown, down, cordoned, draining or full target, with the reason', () => {
    expect(refusal({ toHostId: 'a' })).toBe('SAME_HOST');
    expect(refusal({ target: undefined })).toBe('HOST_NOT_FOUND');
    expect(refusal({ target: aHost('b', { state: 'DOWN' }) })).toBe('TARGET_NOT_READY');
    expect(refusal({ targetConnected: false })).toBe('TARGET_NOT_READY');
    expect(refusal({ target: aHost('b', { cordoned: true }) })).toBe('TARGET_CORDONED');
    expect(refusal({ target: aHost('b', { draining: true }) })).toBe('TARGET_CORDONED');
    const full = checkMove(request({ target: aHost('b', { capacity: { cpuMillis: 16_000, memoryMib: 128, diskMib: 1_048_576 } }) }));
    expect(full).toEqual({ refusal: { code: 'TARGET_FULL', message: expect.stringContaining('short of memory') } });
  });

  it('refuses a second move, a move during a failover and a tenant that is not ACTIVE', () => {
    expect(refusal({ busy: true })).toBe('MOVE_IN_PROGRESS');
    expect(refusal({ status: 'MOVING' })).toBe('MOVE_IN_PROGRESS');
    expect(refusal({ status: 'FAILING_OVER' })).toBe('MOVE_IN_PROGRESS');
    expect(refusal({ status: 'STOPPED' })).toBe('TENANT_NOT_ACTIVE');
    expect(refusal({ status: 'SUSPENDED' })).toBe('TENANT_NOT_ACTIVE');
  });

  it('moves a SUSPENDED tenant only as its wake, and a wake moves nothing else', () => {
    expect(checkMove(request({ status: 'SUSPENDED', waking: true }))).toEqual({ member: { hostId: 'a', role: 'PRIMARY' } });
    expect(refusal({ status: 'ACTIVE', waking: true })).toBe('TENANT_NOT_ACTIVE');
    expect(refusal({ status: 'SUSPENDED', waking: true, busy: true })).toBe('MOVE_IN_PROGRESS');
    const full = checkMove(request({ status: 'SUSPENDED', waking: true, target: aHost('b', { capacity: res({ memoryMib: 128 }) }) }));
    expect(full).toMatchObject({ refusal: { code: 'TARGET_FULL' } });
  });

  it('needs --member for a replicated tenant and moves that member; its zone is freed, the others are not', () => {
    const members = [
      { hostId: 'a', role: 'PRIMARY' as const },
      { hostId: 'c', role: 'REPLICA' as const },
    ];
    expect(refusal({ members })).toBe('MEMBER_REQUIRED');
    expect(refusal({ members, memberHostId: 'x' })).toBe('NOT_A_MEMBER');
    expect(checkMove(request({ members, memberHostId: 'c' }))).toEqual({ member: { hostId: 'c', role: 'REPLICA' } });
    const zoned = { members, memberHostId: 'a', target: aHost('b', { labels: { zone: 'z1' } }) };
    expect(checkMove(request(zoned))).toEqual({ member: { hostId: 'a', role: 'PRIMARY' } });
  });

  it('respects placement labels', () => {
    expect(refusal({ placement: { region: 'eu' }, target: aHost('b', { labels: { region: 'us' } }) })).toBe('TARGET_FULL');
  });
});

const progress = (over: Partial<MoveProgress> = {}): MoveProgress => ({
  phase: 'copying',
  fromHostId: 'a',
  toHostId: 'b',
  primary: true,
  startedAt: 1000,
  phaseStartedAt: 1000,
  copyDeadline: 61_000,
  ...over,
});

const facts = (over: Partial<MoveFacts> = {}): MoveFacts => ({
  targetHostState: 'READY',
  targetConnected: true,
  target: { realization: 'REALIZED', role: 'REPLICA', healthy: true, lagBytes: 0, reason: '' },
  primaryHostId: 'a',
  switchover: undefined,
  switchoverRunning: false,
  oldRemoved: false,
  sourceHostState: 'READY',
  sourceConnected: true,
  cancelled: false,
  backupRunning: false,
  // The source checkpointed just before (the checkpoint's own cases set this).
  checkpoint: { state: 'finished', at: 1500, ok: true },
  ...over,
});

const policy = { maxLagBytes: 1024 };

describe('decideMove', () => {
  it('waits for the copy, then for the catch-up, then switches', () => {
    expect(
      decideMove(progress(), facts({ target: { realization: 'PENDING', role: 'REPLICA', healthy: false, lagBytes: undefined, reason: '' } }), policy, 2000),
    ).toEqual({
      kind: 'wait',
      reason: 'copying to b (base backup of the primary)',
    });
    expect(
      decideMove(progress(), facts({ target: { realization: 'REALIZED', role: 'REPLICA', healthy: true, lagBytes: 5000, reason: '' } }), policy, 2000),
    ).toEqual({
      kind: 'wait',
      reason: 'replica on b catching up (5000 bytes behind)',
    });
    expect(decideMove(progress(), facts(), policy, 2000)).toEqual({ kind: 'switch' });
  });

  it('waits for a running backup before switching, up to the copy deadline', () => {
    expect(decideMove(progress(), facts({ backupRunning: true }), policy, 2000)).toMatchObject({
      kind: 'wait',
      reason: expect.stringContaining('running backup'),
    });
    expect(decideMove(progress(), facts({ backupRunning: true }), policy, 61_001)).toMatchObject({ kind: 'checkpoint' });
    const checkpointed = facts({ backupRunning: true, checkpoint: { state: 'finished', at: 61_000, ok: true } });
    expect(decideMove(progress(), checkpointed, policy, 61_001)).toEqual({ kind: 'switch' });
  });

  it('waits for a source host that went away for a moment instead of switching without it, and gives up only at the copy deadline', () => {
    for (const lost of [{ sourceHostState: 'DOWN' as const }, { sourceHostState: 'UNREACHABLE' as const }, { sourceConnected: false }]) {
      expect(decideMove(progress(), facts(lost), policy, 2000)).toMatchObject({ kind: 'wait', reason: expect.stringContaining('the source host a is') });
      expect(decideMove(progress(), facts(lost), policy, 61_001)).toMatchObject({ kind: 'abandon', reason: expect.stringContaining('the switch needs it') });
    }
    // Back: the move goes on to the checkpoint and the switch.
    expect(decideMove(progress(), facts(), policy, 2000)).toEqual({ kind: 'switch' });
    // A moving replica does not need the source's agent: the old member is simply removed.
    expect(decideMove(progress({ primary: false }), facts({ sourceHostState: 'DOWN' }), policy, 2000)).toMatchObject({ kind: 'remove_old' });
  });

  it('has the source primary checkpoint once the copy caught up, then switches', () => {
    expect(decideMove(progress(), facts({ checkpoint: { state: 'none' } }), policy, 2000)).toEqual({
      kind: 'checkpoint',
      reason: 'replica on b caught up; checkpointing the primary on a before the switch',
    });
    expect(decideMove(progress(), facts({ checkpoint: { state: 'running', since: 2000 } }), policy, 2500)).toMatchObject({
      kind: 'wait',
      reason: expect.stringContaining('checkpointing the primary on a'),
    });
    expect(decideMove(progress(), facts({ checkpoint: { state: 'finished', at: 2600, ok: true } }), policy, 2700)).toEqual({ kind: 'switch' });
  });

  it('does not checkpoint before the copy caught up, nor for a moving replica', () => {
    const lagging = facts({ checkpoint: { state: 'none' }, target: { realization: 'REALIZED', role: 'REPLICA', healthy: true, lagBytes: 5000, reason: '' } });
    expect(decideMove(progress(), lagging, policy, 2000)).toMatchObject({ kind: 'wait', reason: expect.stringContaining('catching up') });
    expect(decideMove(progress({ primary: false }), facts({ checkpoint: { state: 'none' } }), policy, 2000)).toMatchObject({ kind: 'remove_old' });
  });

  it('switches without the checkpoint when it failed or did not answer within its bound', () => {
    expect(decideMove(progress(), facts({ checkpoint: { state: 'finished', at: 2600, ok: false } }), policy, 2700)).toEqual({ kind: 'switch' });
    const running = facts({ checkpoint: { state: 'running', since: 2000 } });
    expect(decideMove(progress(), running, policy, 2000 + 29_999)).toMatchObject({ kind: 'wait' });
    expect(decideMove(progress(), running, policy, 2000 + 30_000)).toEqual({ kind: 'switch' });
    expect(decideMove(progress(), running, { ...policy, checkpointWaitMs: 500 }, 2500)).toEqual({ kind: 'switch' });
  });

  it('switches at once when the checkpoint is turned off', () => {
    expect(decideMove(progress(), facts({ checkpoint: { state: 'none' } }), { ...policy, checkpointWaitMs: 0 }, 2000)).toEqual({ kind: 'switch' });
  });

  it('checkpoints again when the last one is stale by the time the switch is due', () => {
    const old = facts({ checkpoint: { state: 'finished', at: 2000, ok: true } });
    expect(decideMove(progress(), old, policy, 2000 + 30_000)).toEqual({ kind: 'switch' });
    expect(decideMove(progress(), old, policy, 2000 + 30_001)).toMatchObject({ kind: 'checkpoint' });
    expect(decideMove(progress(), old, { ...policy, checkpointFreshMs: 100 }, 2101)).toMatchObject({ kind: 'checkpoint' });
  });

  it('a stopped tenant or a lost target abandons the move even while the source checkpoints', () => {
    const running = { checkpoint: { state: 'running', since: 2000 } } as const;
    expect(decideMove(progress(), facts({ ...running, cancelled: true }), policy, 2100)).toMatchObject({ kind: 'abandon' });
    expect(decideMove(progress(), facts({ ...running, targetHostState: 'DOWN' }), policy, 2100)).toMatchObject({ kind: 'abandon' });
  });

  it('a failover that made the copy the primary commits the move', () => {
    expect(decideMove(progress(), facts({ primaryHostId: 'b' }), policy, 2000)).toMatchObject({ kind: 'remove_old' });
  });

  it('moves a replica member without a switch', () => {
    expect(decideMove(progress({ primary: false }), facts(), policy, 2000)).toMatchObject({ kind: 'remove_old' });
  });

  it('abandons before the switch when the target dies, the copy times out, the tenant stops or the primary changes', () => {
    expect(decideMove(progress(), facts({ targetHostState: 'DOWN' }), policy, 2000)).toMatchObject({
      kind: 'abandon',
      reason: expect.stringContaining('went down'),
    });
    const failed = facts({ target: { realization: 'FAILED', role: 'REPLICA', healthy: false, lagBytes: undefined, reason: 'disk full' } });
    expect(decideMove(progress(), failed, policy, 2000)).toMatchObject({ kind: 'wait', reason: expect.stringContaining('disk full') });
    expect(decideMove(progress(), failed, policy, 61_001)).toMatchObject({ kind: 'abandon', reason: expect.stringContaining('disk full') });
    expect(decideMove(progress(), facts({ cancelled: true }), policy, 2000)).toMatchObject({ kind: 'abandon' });
    expect(decideMove(progress(), facts({ primaryHostId: 'c' }), policy, 2000)).toMatchObject({ kind: 'abandon' });
    expect(decideMove(progress(), facts({ target: undefined }), policy, 2000)).toMatchObject({ kind: 'abandon' });
  });

  it('waits for the agent of the target to reconnect during the copy', () => {
    expect(decideMove(progress(), facts({ targetConnected: false, targetHostState: 'UNREACHABLE' }), policy, 2000)).toMatchObject({ kind: 'wait' });
  });

  it('after the switch commits only goes forward; a rolled back switch abandons', () => {
    const switching = progress({ phase: 'switching' });
    expect(decideMove(switching, facts({ switchoverRunning: true }), policy, 2000)).toMatchObject({ kind: 'wait' });
    expect(decideMove(switching, facts({ primaryHostId: 'b', switchover: { ok: true } }), policy, 2000)).toMatchObject({ kind: 'remove_old' });
    // Committed even when the caller saw an error (e.g. a late confirmation): the target is the primary.
    expect(decideMove(switching, facts({ primaryHostId: 'b', switchover: { ok: false, reason: 'x' } }), policy, 2000)).toMatchObject({ kind: 'remove_old' });
    expect(decideMove(switching, facts({ switchover: { ok: false, reason: 'not caught up' } }), policy, 2000)).toMatchObject({
      kind: 'abandon',
      reason: expect.stringContaining('not caught up'),
    });
  });

  it('finishes once the old instance is removed, or at once when its host is down (removed when it returns)', () => {
    const removing = progress({ phase: 'removing' });
    expect(decideMove(removing, facts({ primaryHostId: 'b' }), policy, 2000)).toMatchObject({ kind: 'wait' });
    expect(decideMove(removing, facts({ primaryHostId: 'b', oldRemoved: true }), policy, 2000)).toEqual({ kind: 'done' });
    expect(decideMove(removing, facts({ primaryHostId: 'b', sourceHostState: 'DOWN' }), policy, 2000)).toEqual({ kind: 'done' });
  });
});
