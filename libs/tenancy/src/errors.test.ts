import { describe, expect, it } from 'vitest';
import { PgsError, StaleRevisionError, TransitionError, ValidationError } from './errors.js';

describe('errors', () => {
  it('PgsError defaults to kind service and keeps its cause', () => {
    const cause = new Error('disk full');
    const err = new PgsError('STORE_WRITE', 'could not write', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('PgsError');
    expect(err.code).toBe('STORE_WRITE');
    expect(err.kind).toBe('service');
    expect(err.cause).toBe(cause);
  });

  it('ValidationError says which field, what was given and what is allowed', () => {
    const err = new ValidationError('spec.nodes', 20, 'a whole number from 1 to 16');
    expect(err).toBeInstanceOf(PgsError);
    expect(err.name).toBe('ValidationError');
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.kind).toBe('user');
    expect(err.message).toBe('invalid spec.nodes: got 20; allowed: a whole number from 1 to 16');
    expect(new ValidationError('id', 'x', 'y', { code: 'INVALID_TENANT_ID' }).code).toBe('INVALID_TENANT_ID');
  });

  it('ValidationError shortens long values and survives unprintable ones', () => {
    expect(new ValidationError('d', 'x'.repeat(200), 'short').message).toContain('...');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(new ValidationError('d', cyclic, 'acyclic').message).toContain('<object');
  });

  it('StaleRevisionError and TransitionError carry their data', () => {
    const stale = new StaleRevisionError(5, 4);
    expect([stale.code, stale.current, stale.given, stale.kind]).toEqual(['STALE_REVISION', 5, 4, 'user']);
    const transition = new TransitionError('DELETING', 'ACTIVE', []);
    expect([transition.code, transition.from, transition.to]).toEqual(['INVALID_TRANSITION', 'DELETING', 'ACTIVE']);
    expect(transition.message).toContain('none (terminal)');
  });
});
