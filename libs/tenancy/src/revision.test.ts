import { describe, expect, it } from 'vitest';
import { StaleRevisionError, ValidationError } from './errors.js';
import { checkRevision, nextRevision } from './revision.js';

describe('checkRevision', () => {
  it('passes the current revision', () => {
    expect(() => checkRevision(3, 3)).not.toThrow();
  });

  it('refuses a stale or future revision with both numbers', () => {
    for (const given of [2, 4]) {
      const err = (() => {
        try {
          checkRevision(3, given);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(StaleRevisionError);
      expect(err).toMatchObject({ code: 'STALE_REVISION', current: 3, given, kind: 'user' });
    }
  });

  it('treats 0 as unconditional only when the caller allows it', () => {
    expect(() => checkRevision(3, 0)).toThrow(StaleRevisionError);
    expect(() => checkRevision(3, 0, { allowUnconditional: true })).not.toThrow();
    expect(() => checkRevision(3, 2, { allowUnconditional: true })).toThrow(StaleRevisionError);
  });

  it('refuses a revision that is not a whole number', () => {
    expect(() => checkRevision(3, -1)).toThrow(ValidationError);
    expect(() => checkRevision(3, 1.5)).toThrow(ValidationError);
  });

  it('nextRevision counts up by one', () => {
    expect(nextRevision(1)).toBe(2);
  });
});
