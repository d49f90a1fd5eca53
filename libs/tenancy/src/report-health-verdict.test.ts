import { describe, expect, it } from 'vitest';
import { reportMayFlipHealth, verdictDerivedWith } from './report-health-verdict.js';

describe('reportMayFlipHealth', () => {
  it('compares with the health seen since start when there is one, whatever the stored status', () => {
    expect(reportMayFlipHealth({ seen: true, reported: true, status: 'ACTIVE', statusReason: '' })).toBe(false);
    expect(reportMayFlipHealth({ seen: false, reported: false, status: 'ERROR', statusReason: 'primary is not healthy' })).toBe(false);
    expect(reportMayFlipHealth({ seen: true, reported: false, status: 'ACTIVE', statusReason: '' })).toBe(true);
    expect(reportMayFlipHealth({ seen: false, reported: true, status: 'ERROR', statusReason: 'primary is not healthy' })).toBe(true);
  });

  it('after a start, an ACTIVE tenant with no reason was derived healthy: a healthy report repeats it, an unhealthy one flips it', () => {
    expect(verdictDerivedWith({ seen: undefined, status: 'ACTIVE', statusReason: '' })).toBe(true);
    expect(reportMayFlipHealth({ seen: undefined, reported: true, status: 'ACTIVE', statusReason: '' })).toBe(false);
    expect(reportMayFlipHealth({ seen: undefined, reported: false, status: 'ACTIVE', statusReason: '' })).toBe(true);
  });

  it('after a start, any other stored status leaves the verdict unknown: the report is applied', () => {
    for (const [status, statusReason] of [
      ['IN_PROGRESS', 'waiting for the primary on host h1 to accept connections'],
      ['ERROR', 'primary on host h1 is not healthy'],
      ['ACTIVE', 'replica on host h2 is not healthy'],
      ['UNAVAILABLE', 'primary host h1 is down'],
      ['MOVING', 'moving to h2'],
    ] as const) {
      expect(verdictDerivedWith({ seen: undefined, status, statusReason })).toBeUndefined();
      expect(reportMayFlipHealth({ seen: undefined, reported: true, status, statusReason })).toBe(true);
      expect(reportMayFlipHealth({ seen: undefined, reported: false, status, statusReason })).toBe(true);
    }
  });
});
