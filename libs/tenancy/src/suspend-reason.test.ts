import { describe, expect, it } from 'vitest';
import { suspendedReason, suspendedSince } from './suspend-reason.js';

describe('suspended reason', () => {
  it('names the moment, and reads it back while the tenant is SUSPENDED', () => {
    const at = Date.parse('2026-12-06T18:00:05.123Z');
    const reason = suspendedReason(at, 'idle for 300s (policy 300s)');
    expect(reason).toBe('suspended at 2026-12-06T18:00:05.123Z (idle for 300s (policy 300s))');
    expect(suspendedSince('SUSPENDED', reason)).toBe(at);
    // A refused wake appends its reason; the moment stays readable.
    expect(suspendedSince('SUSPENDED', `${reason}; wake refused: its host h3 is DOWN`)).toBe(at);
  });

  it('says nothing for another status or a reason in another form', () => {
    expect(suspendedSince('ACTIVE', suspendedReason(0, 'x'))).toBeUndefined();
    expect(suspendedSince('SUSPENDED', 'suspended while idle')).toBeUndefined();
    expect(suspendedSince('SUSPENDED', 'suspended at 2026-13-45T99:99:99Z (x)')).toBeUndefined();
  });
});
