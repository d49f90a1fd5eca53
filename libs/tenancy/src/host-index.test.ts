import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostIndex } from './host-index.js';

/** The index's hosts in order. */
function contents(index: HostIndex): number[] {
  return Array.from({ length: index.size }, (_, i) => index.at(i));
}

/** Hosts sorted by (memory, host number), the order the index must keep. */
function expected(memory: Float64Array, members: number[]): number[] {
  return [...members].sort((a, b) => (memory[a] as number) - (memory[b] as number) || a - b);
}

describe('HostIndex', () => {
  it('sorts by free memory, ties by host number', () => {
    const memory = Float64Array.from([5, 1, 5, 3]);
    const index = new HostIndex(memory, [0, 1, 2, 3]);
    expect(contents(index)).toEqual([1, 3, 0, 2]);
    expect(index.lowerBound(4, -1)).toBe(2);
    expect(index.lowerBound(6, -1)).toBe(4);
    expect(index.lowerBound(0, -1)).toBe(0);
  });

  it('stays sorted through any sequence of memory changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 20 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: -10, max: 10 })), { maxLength: 60 }),
        (initial, changes) => {
          const memory = Float64Array.from(initial);
          const members = initial.map((_, i) => i).filter((i) => i % 3 !== 2);
          const index = new HostIndex(memory, members);
          for (const [pick, delta] of changes) {
            const host = members[pick % members.length];
            if (host === undefined) continue;
            const previous = memory[host] as number;
            memory[host] = previous + delta;
            index.update(host, previous);
          }
          expect(contents(index)).toEqual(expected(memory, members));
        },
      ),
    );
  });

  it('refuses to update a host it does not hold', () => {
    const memory = Float64Array.from([1, 2]);
    const index = new HostIndex(memory, [0]);
    expect(() => index.update(1, 2)).toThrow(/not in this index/);
  });
});
