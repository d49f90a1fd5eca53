import { describe, expect, it } from 'vitest';
import { Liveness } from './liveness.js';

// The defaults: ttl 3 s, grace 4 s, so the storm's part ends by 70 s and the whole grace by 280 s.
const options = { ttlMs: 3000, graceMs: 4000, confirmMs: 5000, startedAt: 0 };

/** A coordinator started at 0 on a store that knew `ids`, every one of which said Hello at `at` (its stream open). */
function started(ids: string[], at: number): Liveness {
  const l = new Liveness(options);
  l.expectReconnects(ids);
  for (const id of ids) {
    l.seen(id, 0);
    l.reconnecting(at);
    l.helloed(id, at);
    l.catchingUp(id);
    l.seen(id, at);
    l.streamOpened(id);
    l.reading(id, at);
  }
  return l;
}

describe('Liveness: the start grace follows the hosts catching up', () => {
  it('judges no host while hosts still wait for their full sets and first reports, past the last Hello', () => {
    const l = started(['a', 'b', 'c'], 1000);
    // a and b caught up at 10 s; c still waits. Silent since 1 s, far past ttl + grace.
    l.caughtUp('a', 10_000);
    l.caughtUp('b', 10_000);
    expect(l.inStartGrace(20_000)).toBe(true);
    expect(l.stateAt('a', 20_000, 'READY')).toBe('READY');
    // Once c caught up too, the grace is over and silence counts again, from the grace's end.
    l.caughtUp('c', 21_000);
    expect(l.stateAt('a', 21_001, 'READY')).toBe('READY');
    expect(l.inStartGrace(21_001)).toBe(false);
    expect(l.stateAt('a', 24_002, 'READY')).toBe('UNREACHABLE');
    expect(l.stateAt('a', 28_002, 'READY')).toBe('DOWN');
  });

  it('takes a host that died while the others catch up DOWN once the backlog stops moving', () => {
    const l = started(['a', 'b', 'dead'], 1000);
    // a and b keep heartbeating; 'dead' never reports (it died after its Hello, no reset: a partition).
    for (let t = 1000; t <= 30_000; t += 1000) {
      l.seen('a', t);
      l.seen('b', t);
    }
    l.caughtUp('a', 5000);
    l.caughtUp('b', 8000);
    // Nothing caught up since 8 s: the grace holds until 8 + 14 s, then the dead host is judged
    // (its silence counted from there): DOWN ttl + grace later.
    expect(l.stateAt('dead', 22_000, 'READY')).toBe('READY');
    expect(l.stateAt('dead', 22_001, 'READY')).toBe('READY');
    expect(l.stateAt('dead', 25_002, 'READY')).toBe('UNREACHABLE');
    expect(l.stateAt('dead', 29_002, 'READY')).toBe('DOWN');
    expect(l.stateAt('a', 29_002, 'READY')).toBe('READY');
  });

  it('takes a host that died DOWN at the hard bound even while other hosts keep catching up', () => {
    const ids = Array.from({ length: 600 }, (_, i) => `h${i}`);
    const l = started([...ids, 'dead'], 1000);
    // One host catches up every 0.5 s: the backlog still moves at the bound.
    let t = 1000;
    for (const id of ids) {
      t += 500;
      for (const other of ids) l.seen(other, t);
      l.caughtUp(id, t);
      if (t >= 279_000) break;
    }
    expect(l.stateAt('dead', 279_999, 'READY')).toBe('READY');
    expect(l.stateAt('dead', 280_000, 'READY')).toBe('READY');
    expect(l.stateAt('dead', 287_001, 'READY')).toBe('DOWN');
  });

  it('a stream that ended is no longer waited for', () => {
    const l = started(['a', 'gone'], 1000);
    l.caughtUp('a', 2000);
    l.streamEnded('gone', 'reset', 3000);
    expect(l.inStartGrace(3001)).toBe(false);
    // Its broken stream is judged as always: UNREACHABLE at once, DOWN after confirmMs.
    expect(l.stateAt('gone', 3001, 'READY')).toBe('UNREACHABLE');
    expect(l.stateAt('gone', 8000, 'READY')).toBe('DOWN');
  });

  it('once over, the grace never comes back: a host saying Hello later is not a backlog', () => {
    const l = started(['a'], 1000);
    l.caughtUp('a', 2000);
    expect(l.inStartGrace(2001)).toBe(false);
    l.reconnecting(50_000);
    l.helloed('b', 50_000);
    l.catchingUp('b');
    expect(l.inStartGrace(50_001)).toBe(false);
    expect(l.startProgress.catchingUp).toBe(0);
  });
});
