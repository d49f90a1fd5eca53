import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { replicationSlotName, standbyName, syncConfigFor, synchronousStandbyNames } from './failover-replication.js';

describe('synchronousStandbyNames', () => {
  it('ANY k with every name quoted', () => {
    expect(synchronousStandbyNames(1, ['h2', 'h3'])).toBe('ANY 1 ("h2", "h3")');
    expect(synchronousStandbyNames(2, ['host-b.zone', 'h"q'])).toBe('ANY 2 ("host-b.zone", "h""q")');
  });

  it('k = 0 is asynchronous', () => {
    expect(synchronousStandbyNames(0, [])).toBe('');
    expect(synchronousStandbyNames(0, ['h2'])).toBe('');
  });

  it('refuses a quorum larger than the names, negative or fractional k, empty or duplicate names', () => {
    expect(() => synchronousStandbyNames(2, ['h2'])).toThrow(ValidationError);
    expect(() => synchronousStandbyNames(-1, ['h2'])).toThrow(ValidationError);
    expect(() => synchronousStandbyNames(0.5, ['h2'])).toThrow(ValidationError);
    expect(() => synchronousStandbyNames(1, [''])).toThrow(ValidationError);
    expect(() => synchronousStandbyNames(1, ['a', 'a'])).toThrow(ValidationError);
  });

  it('syncConfigFor shrinks the quorum to the standbys available and says so', () => {
    expect(syncConfigFor(1, ['h2', 'h3'])).toEqual({ k: 1, names: ['h2', 'h3'], setting: 'ANY 1 ("h2", "h3")', degraded: false });
    expect(syncConfigFor(2, ['h3'])).toEqual({ k: 1, names: ['h3'], setting: 'ANY 1 ("h3")', degraded: true });
    expect(syncConfigFor(1, [])).toEqual({ k: 0, names: [], setting: '', degraded: true });
    expect(syncConfigFor(0, ['h2'])).toEqual({ k: 0, names: [], setting: '', degraded: false });
  });
});

describe('replication names', () => {
  it('the standby name is the host id', () => {
    expect(standbyName('h2')).toBe('h2');
  });

  it('slot names are plain for plain host ids and hashed when sanitised', () => {
    expect(replicationSlotName('h2')).toBe('pgs_h2');
    expect(replicationSlotName('host-1')).toMatch(/^pgs_host_1_[0-9a-f]{8}$/);
    expect(replicationSlotName('host-1')).not.toBe(replicationSlotName('host.1'));
    expect(replicationSlotName('host-1')).not.toBe(replicationSlotName('host_1'));
  });

  it('slot names are valid PostgreSQL slot names and distinct for distinct host ids (property)', () => {
    const hostId = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,62}$/);
    fc.assert(fc.property(hostId, (h) => /^[a-z0-9_]{1,63}$/.test(replicationSlotName(h))));
    fc.assert(fc.property(hostId, hostId, (a, b) => a === b || replicationSlotName(a) !== replicationSlotName(b)));
  });
});
