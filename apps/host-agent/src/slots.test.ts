import { describe, expect, it } from 'vitest';
import { Slots } from './slots.js';

describe('Slots', () => {
  it('lets `max` in at a time and the rest in the order they asked', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const waits = [0, 1, 2, 3].map((i) => slots.acquire().then((release) => (order.push(i), releases.push(release))));
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([0, 1]);
    releases[0]?.();
    // Releasing twice gives back one slot only.
    releases[0]?.();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 2]);
    releases[1]?.();
    await Promise.all(waits);
    expect(order).toEqual([0, 1, 2, 3]);
    // Two still held: a newcomer waits for one of them.
    let fifth = false;
    const late = slots.acquire().then((release) => {
      fifth = true;
      return release;
    });
    await new Promise((r) => setImmediate(r));
    expect(fifth).toBe(false);
    releases[2]?.();
    (await late)();
    expect(fifth).toBe(true);
  });

  it('does not limit with max 0', async () => {
    const slots = new Slots(0);
    const all = await Promise.all(Array.from({ length: 50 }, () => slots.acquire()));
    expect(all).toHaveLength(50);
  });
});
