import { describe, expect, it } from 'vitest';
import { hostDrainFields, hostStateText } from './tables.js';
import type { HostView } from './views.js';

const host = (over: Partial<HostView>): HostView => ({
  id: 'h1',
  address: '127.0.0.1',
  state: 'READY',
  cordoned: true,
  draining: true,
  capacity: { cpuMillis: 4000, memoryMib: 8192, diskMib: 102400 },
  allocated: { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 3 },
  labels: {},
  runtime: 'process',
  agentVersion: '0.1.0',
  readySpares: null,
  postgres: [],
  drain: null,
  lastHeartbeatAt: null,
  registeredAt: null,
  ...over,
});

describe('a host being drained', () => {
  it('shows the counts and each tenant the drain cannot move with why', () => {
    const h = host({
      drain: { total: 3, moved: 1, moving: 1, blocked: 1, blockedTenants: [{ tenantId: 'big', reason: 'no host has 64 GiB of memory free' }] },
    });
    expect(hostStateText(h)).toBe('READY,cordoned,draining 1/3 moved 1 moving 1 blocked');
    expect(hostDrainFields(h)).toEqual([
      ['Drain', '1/3 moved, 1 moving, 1 blocked'],
      ['  blocked big', 'no host has 64 GiB of memory free'],
    ]);
  });

  it('says planning before the drain has its plan, and nothing when not draining', () => {
    expect(hostDrainFields(host({}))).toEqual([['Drain', 'planning']]);
    expect(hostDrainFields(host({ draining: false }))).toEqual([]);
  });
});
