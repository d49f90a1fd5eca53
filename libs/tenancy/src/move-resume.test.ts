import { describe, expect, it } from 'vitest';
import type { MoveProgress } from './move.js';
import { resumeMove, type MoveResumeFacts } from './move-resume.js';

const NOW = 100_000;

function progress(over: Partial<MoveProgress> = {}): MoveProgress {
  return { phase: 'copying', fromHostId: 'a', toHostId: 'b', primary: true, startedAt: 90_000, phaseStartedAt: 90_000, copyDeadline: 200_000, ...over };
}

function facts(over: Partial<MoveResumeFacts> = {}): MoveResumeFacts {
  return {
    tenantExists: true,
    wake: true,
    members: [
      { hostId: 'a', role: 'PRIMARY' },
      { hostId: 'b', role: 'REPLICA' },
    ],
    targetHostState: 'READY',
    switchoverInFlight: false,
    ...over,
  };
}

describe('resumeMove', () => {
  it('goes on copying where the copy is still there, on a host that is up, before its deadline', () => {
    expect(resumeMove(progress(), facts(), NOW)).toEqual({ kind: 'resume', progress: progress(), reason: 'copying to b goes on' });
    expect(resumeMove(progress(), facts({ targetHostState: 'UNREACHABLE' }), NOW).kind).toBe('resume');
  });

  it('puts a wake by a move back to sleep when its copy is gone, its target is down or gone, or the copy is late', () => {
    const noCopy = facts({ members: [{ hostId: 'a', role: 'PRIMARY' }] });
    expect(resumeMove(progress(), noCopy, NOW)).toEqual({ kind: 'abandon', reason: 'the copy on b is gone', sleep: true });
    expect(resumeMove(progress(), facts({ targetHostState: 'DOWN' }), NOW)).toEqual({ kind: 'abandon', reason: 'target host b is DOWN', sleep: true });
    expect(resumeMove(progress(), facts({ targetHostState: undefined }), NOW)).toEqual({ kind: 'abandon', reason: 'target host b is gone', sleep: true });
    expect(resumeMove(progress({ copyDeadline: NOW - 1 }), facts(), NOW)).toEqual({
      kind: 'abandon',
      reason: 'the copy on b did not catch up within 9999 ms',
      sleep: true,
    });
  });

  it('abandons an ordinary move the same way, without putting anything to sleep', () => {
    expect(resumeMove(progress(), facts({ wake: false, targetHostState: 'DOWN' }), NOW)).toEqual({
      kind: 'abandon',
      reason: 'target host b is DOWN',
      sleep: false,
    });
  });

  it('waits for a switchover still in flight, and goes on to the removal once the target is the primary', () => {
    const switching = progress({ phase: 'switching' });
    expect(resumeMove(switching, facts({ switchoverInFlight: true }), NOW)).toMatchObject({ kind: 'resume', progress: switching });
    const swapped = facts({
      members: [
        { hostId: 'a', role: 'REPLICA' },
        { hostId: 'b', role: 'PRIMARY' },
      ],
    });
    expect(resumeMove(switching, swapped, NOW)).toEqual({ kind: 'resume', progress: switching, reason: 'b is the primary: removing the old instance on a' });
    // A failover made the copy the primary during the copy: nothing to go back to, even past the deadline.
    expect(resumeMove(progress({ copyDeadline: 0 }), swapped, NOW).kind).toBe('resume');
  });

  it('copies again when the switch never happened or was rolled back while no coordinator watched', () => {
    const r = resumeMove(progress({ phase: 'switching' }), facts(), NOW);
    expect(r).toEqual({
      kind: 'resume',
      progress: progress({ phase: 'copying', phaseStartedAt: NOW }),
      reason: 'the switch to b did not happen; switching again once the copy caught up',
    });
    // Unless the copy is gone or late: a wake then sleeps again on its own host.
    expect(resumeMove(progress({ phase: 'switching', copyDeadline: NOW - 1 }), facts(), NOW)).toMatchObject({ kind: 'abandon', sleep: true });
  });

  it('completes a move that was removing its old instance, and forgets one whose tenant is gone', () => {
    const removing = progress({ phase: 'removing' });
    expect(resumeMove(removing, facts({ members: [{ hostId: 'b', role: 'PRIMARY' }] }), NOW)).toEqual({
      kind: 'complete',
      reason: 'serving on b; the old instance on a is deleted by its host',
    });
    expect(resumeMove(progress(), facts({ tenantExists: false }), NOW)).toEqual({ kind: 'forget', reason: 'the tenant is gone' });
  });
});
