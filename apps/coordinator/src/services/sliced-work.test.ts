import { describe, expect, it } from 'vitest';
import { runSlice } from './sliced-work.js';
import { RecentLateness, stallBeyondHeartbeat } from '../live/loop-stall.js';

/** A backlog of `n` items taken `room` at a time, each costing `msPerItem` on a fake clock. */
function backlog(n: number, msPerItem = 0) {
  let left = n;
  let clock = 0;
  return {
    step: (room: number) => {
      const took = Math.min(room, left, 7); // a page holds at most 7, like a LIMIT
      left -= took;
      clock += took * msPerItem;
      return took;
    },
    now: () => clock,
    left: () => left,
  };
}

describe('runSlice', () => {
  it('stops at the item cap and says there is more', async () => {
    const b = backlog(100);
    expect(await runSlice(b.step, { maxItems: 20, maxMs: 1000 }, b.now)).toEqual({ items: 20, more: true });
    expect(b.left()).toBe(80);
  });

  it('stops when the time budget is spent, even below the item cap', async () => {
    const b = backlog(100, 10);
    const out = await runSlice(b.step, { maxItems: 100, maxMs: 50 }, b.now);
    expect(out).toEqual({ items: 7, more: true }); // one page took 70 ms > 50 ms
  });

  it('finishes a backlog in successive slices, then reports nothing more', async () => {
    const b = backlog(45);
    const slices = [];
    for (;;) {
      const out = await runSlice(b.step, { maxItems: 20, maxMs: 1000 }, b.now);
      slices.push(out.items);
      if (!out.more) break;
    }
    expect(slices).toEqual([20, 20, 5]);
    expect(b.left()).toBe(0);
  });
});

describe('stallBeyondHeartbeat', () => {
  it('defers liveness only when a tick is late by more than one heartbeat interval', async () => {
    expect(stallBeyondHeartbeat(250, 250, 1000)).toBe(false);
    expect(stallBeyondHeartbeat(1250, 250, 1000)).toBe(false);
    expect(stallBeyondHeartbeat(1251, 250, 1000)).toBe(true);
    expect(stallBeyondHeartbeat(8000, 250, 1000)).toBe(true);
  });
});

describe('RecentLateness', () => {
  it('keeps the worst lateness of the window, then forgets it', () => {
    const l = new RecentLateness(3000);
    expect(l.note(1000, 0)).toBe(0);
    expect(l.note(1250, 4000)).toBe(4000);
    // Ticks on time after a stall still carry it for one window.
    expect(l.note(1500, 0)).toBe(4000);
    expect(l.note(4250, 20)).toBe(4000);
    expect(l.note(4251, -3)).toBe(20);
    expect(l.note(9000, 0)).toBe(0);
  });
});
