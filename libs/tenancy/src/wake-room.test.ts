import { describe, expect, it } from 'vitest';
import { wakeProblem, type WakeHost } from './wake-room.js';

const host = (over: Partial<WakeHost> = {}): WakeHost => ({
  id: 'h1',
  state: 'READY',
  capacity: { cpuMillis: 4_000, memoryMib: 4_096, diskMib: 100_000 },
  allocated: { cpuMillis: 2_000, memoryMib: 3_072, diskMib: 50_000 },
  ...over,
});
const ask = { cpuMillis: 1_000, memoryMib: 1_024, diskMib: 8_192 };

describe('wakeProblem', () => {
  it('lets a tenant that fits wake', () => {
    expect(wakeProblem(host(), ask, 1)).toBeUndefined();
  });

  it('names what the host is short of', () => {
    expect(wakeProblem(host({ allocated: { cpuMillis: 4_000, memoryMib: 3_584, diskMib: 0 } }), ask, 1)).toBe(
      'its host h1 has no room left for it: short of memory (needs 1Gi, 512Mi free) and cpu (needs 1, 0 free)',
    );
  });

  it('counts cpu over-commit, never memory over-commit', () => {
    const busyCpu = host({ allocated: { cpuMillis: 4_000, memoryMib: 0, diskMib: 0 } });
    expect(wakeProblem(busyCpu, ask, 1)).toMatch(/short of cpu/);
    expect(wakeProblem(busyCpu, ask, 2)).toBeUndefined();
  });

  it('refuses a host that is gone or not ready', () => {
    expect(wakeProblem(undefined, ask, 1)).toMatch(/no longer registered/);
    expect(wakeProblem(host({ state: 'DOWN' }), ask, 1)).toBe('its host h1 is DOWN');
  });
});
