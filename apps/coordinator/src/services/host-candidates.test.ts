import { placeTenants } from '@pgs/tenancy';
import { describe, expect, it } from 'vitest';
import { HostSlots } from '../live/host-slots.js';
import { aHost } from '../testing/records.js';
import { candidatesFrom } from './host-candidates.js';

const request = (tenantId: string) => ({ tenantId, resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 }, nodes: 1, placement: {} });

describe('candidatesFrom with the hosts’ instance slots', () => {
  // h1 holds two instances; one of them is suspended, so only one counts against its CPU and memory.
  const allocations = new Map([['h1', { cpuMillis: 1000, memoryMib: 512, diskMib: 16_384, instances: 2 }]]);
  const hosts = [aHost('h1'), aHost('h2')];

  it('bin-packs onto the fuller host while no slots are known', () => {
    const candidates = candidatesFrom(hosts, allocations, new Map());
    expect(candidates.every((c) => c.maxInstances === undefined)).toBe(true);
    expect(placeTenants(candidates, [request('t')]).placed).toEqual([{ tenantId: 't', hostIds: ['h1'] }]);
  });

  it('never gives a host more instances than its agent has ports, suspended instances included', () => {
    const slots = new HostSlots();
    slots.report('h1', 2);
    slots.report('h2', 100);
    const candidates = candidatesFrom(hosts, allocations, new Map(), undefined, undefined, (id) => slots.get(id));
    expect(candidates.map((c) => c.maxInstances)).toEqual([2, 100]);
    expect(placeTenants(candidates, [request('t')]).placed).toEqual([{ tenantId: 't', hostIds: ['h2'] }]);
    // With h2 gone too, the tenant waits with the reason instead of failing on the host.
    expect(placeTenants(candidates.slice(0, 1), [request('t')]).unplaced[0]?.reason).toContain('at their instance limit');
  });

  it('forgets a host whose agent said no limit', () => {
    const slots = new HostSlots();
    slots.report('h1', 2);
    slots.report('h1', 0);
    expect(slots.get('h1')).toBeUndefined();
  });
});
