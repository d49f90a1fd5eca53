import { describe, expect, it } from 'vitest';
import { DrainRunner, type MoveStarter } from './drain-runner.js';

/** A move executor whose moves finish when the test says. */
class FakeMoves implements MoveStarter {
  readonly started: string[] = [];
  readonly running = new Set<string>();
  readonly outcomes = new Map<string, { ok: boolean; reason: string }>();
  refuse = new Map<string, { code: string; message: string }>();

  start(tenantId: string): Promise<void> {
    const r = this.refuse.get(tenantId);
    if (r) return Promise.reject(Object.assign(new Error(r.message), { code: r.code }));
    this.started.push(tenantId);
    this.running.add(tenantId);
    return Promise.resolve();
  }
  inFlight(tenantId: string): boolean {
    return this.running.has(tenantId);
  }
  outcome(tenantId: string): { ok: boolean; reason: string } | undefined {
    return this.outcomes.get(tenantId);
  }
  finish(tenantId: string, ok: boolean, reason = ''): void {
    this.running.delete(tenantId);
    this.outcomes.set(tenantId, { ok, reason });
  }
}

const queue = (...ids: string[]) => ids.map((tenantId) => ({ tenantId, toHostId: 'b', memberHostId: '' }));

describe('DrainRunner', () => {
  it('runs at most `parallel` moves at a time and counts what moved', async () => {
    const moves = new FakeMoves();
    const drains = new DrainRunner(moves);
    drains.start('a', { queue: queue('t1', 't2', 't3'), blocked: [], moved: ['never-ran'] }, 2, 'op');
    await drains.tick();
    expect(moves.started).toEqual(['t1', 't2']);
    expect(drains.progress('a')).toMatchObject({ total: 4, moved: 1, moving: 2, blocked: 0 });
    moves.finish('t1', true);
    await drains.tick();
    expect(moves.started).toEqual(['t1', 't2', 't3']);
    moves.finish('t3', true);
    // A failed move is tried again, up to three times in all, then the tenant is blocked.
    for (let i = 0; i < 3; i++) {
      moves.finish('t2', false, 'target died');
      await drains.tick();
    }
    expect(moves.started.filter((t) => t === 't2')).toHaveLength(3);
    expect(drains.progress('a')).toEqual({
      total: 4,
      moved: 3,
      moving: 0,
      blocked: 1,
      blockedTenants: [{ tenantId: 't2', reason: 'the move failed: target died' }],
    });
  });

  it('tries a busy tenant again later, and reports one the target refuses', async () => {
    const moves = new FakeMoves();
    const drains = new DrainRunner(moves);
    moves.refuse.set('busy', { code: 'TENANT_NOT_ACTIVE', message: 'tenant "busy" is IN_PROGRESS' });
    moves.refuse.set('full', { code: 'TARGET_FULL', message: 'host "b" cannot take tenant "full"' });
    drains.start('a', { queue: queue('busy', 'full'), blocked: [{ tenantId: 'huge', reason: 'no host' }], moved: [] }, 1, 'op');
    await drains.tick();
    expect(drains.progress('a')).toMatchObject({ total: 3, moving: 0, blocked: 2 });
    moves.refuse.delete('busy');
    await drains.tick();
    expect(moves.started).toEqual(['busy']);
    drains.stop('a');
    expect(drains.progress('a')).toBeUndefined();
  });
});
