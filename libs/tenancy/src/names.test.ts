import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import {
  RESERVED_TENANT_IDS,
  isValidTenantId,
  validateDatabaseName,
  validateHostId,
  validateLabels,
  validatePassword,
  validateTenantId,
  validateUserName,
} from './names.js';

/** Runs fn and returns the ValidationError it throws. */
function refusal(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('validateTenantId', () => {
  it.each(['a', 'acme', 'acme-prod', 'a1', 'x'.repeat(63), 'team-42-eu'])('accepts %s', (id) => {
    expect(validateTenantId(id)).toBe(id);
    expect(isValidTenantId(id)).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['x'.repeat(64), 'too long'],
    ['Acme', 'upper case'],
    ['1acme', 'starts with a digit'],
    ['-acme', 'starts with a hyphen'],
    ['_acme', 'starts with an underscore'],
    ['acme-', 'ends with a hyphen'],
    ['acme_prod', 'underscore (not valid in a TLS server name)'],
    ['ac--me', 'double hyphen'],
    ['ac.me', 'dot'],
    ['ac me', 'space'],
    ['pg_acme', 'pg_ prefix'],
    ['pgs_acme', 'pgs_ prefix'],
    ['dbaas_acme', 'dbaas_ prefix'],
    ['postgresql', 'postgres prefix'],
    ['acmé', 'non-ASCII'],
  ])('refuses %j (%s) naming the field, the value and the rule', (id) => {
    const err = refusal(() => validateTenantId(id));
    expect(err.field).toBe('id');
    expect(err.given).toBe(id);
    expect(err.code).toBe('INVALID_TENANT_ID');
    expect(err.allowed).toContain('lowercase letters');
    expect(isValidTenantId(id)).toBe(false);
  });

  it('refuses every reserved name, saying it is reserved', () => {
    for (const id of RESERVED_TENANT_IDS) {
      // Reserved names that also break the alphabet (none today) would still be refused.
      const err = refusal(() => validateTenantId(id));
      expect(err.code).toBe('INVALID_TENANT_ID');
    }
    expect(refusal(() => validateTenantId('admin')).allowed).toContain('admin is reserved');
    expect(refusal(() => validateTenantId('template1')).allowed).toContain('reserved');
  });

  it('refuses non-strings and uses the field name given', () => {
    expect(refusal(() => validateTenantId(42 as unknown as string)).given).toBe(42);
    expect(refusal(() => validateTenantId('', 'tenant_id')).field).toBe('tenant_id');
  });

  it('every valid id is an LDH DNS label and, without its hyphens, a valid role name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[a-z0-9_.-]{1,66}$/)), (id) => {
        if (!isValidTenantId(id)) return;
        expect(id).toMatch(/^[a-z][a-z0-9-]{0,62}$/);
        expect(id).not.toMatch(/-$/);
        expect(() => validateUserName(id.replaceAll('-', '_'))).not.toThrow();
      }),
    );
  });
});

describe('validateUserName', () => {
  it.each(['app_user', 'A', '_x', 'user$1', 'Alice', 'x'.repeat(63)])('accepts %s', (name) => {
    expect(validateUserName(name)).toBe(name);
  });

  it.each([
    '',
    'x'.repeat(64),
    '1user',
    '$user',
    'us-er',
    'us.er',
    'pg_monitor',
    'PG_x',
    'dbaas_admin',
    'pgs_agent',
    'postgres',
    'postgres2',
    'Postgres',
    'public',
    'NONE',
    'current_user',
    'session_user',
  ])('refuses %j', (name) => {
    const err = refusal(() => validateUserName(name, 'user.name'));
    expect(err.field).toBe('user.name');
    expect(err.code).toBe('INVALID_USER_NAME');
    expect(err.allowed).toContain('pg_');
  });
});

describe('validateDatabaseName', () => {
  it.each(['app_database', 'Main', '_x', 'pg_stuff', 'x'.repeat(63)])('accepts %s', (name) => {
    expect(validateDatabaseName(name)).toBe(name);
  });

  it.each(['', 'x'.repeat(64), '1db', 'db$', 'my-db', 'postgres', 'template0', 'Template1'])('refuses %j', (name) => {
    const err = refusal(() => validateDatabaseName(name));
    expect(err.field).toBe('name');
    expect(err.code).toBe('INVALID_DATABASE_NAME');
  });
});

describe('validatePassword', () => {
  it('accepts 8..99 characters, counting code points', () => {
    expect(validatePassword('12345678')).toBe('12345678');
    expect(validatePassword('x'.repeat(99))).toHaveLength(99);
    // 8 emoji are 16 UTF-16 units but 8 characters.
    expect(() => validatePassword('😀'.repeat(8))).not.toThrow();
    expect(() => validatePassword('😀'.repeat(99))).not.toThrow();
  });

  it('refuses short, long and NUL-bearing passwords without echoing them', () => {
    for (const pw of ['1234567', 'x'.repeat(100), 'secret\0secret']) {
      const err = refusal(() => validatePassword(pw));
      expect(err.code).toBe('INVALID_PASSWORD');
      expect(err.message).not.toContain(pw.slice(0, 7));
      expect(String(err.given)).toMatch(/characters, hidden/);
    }
    expect(refusal(() => validatePassword(undefined as unknown as string)).given).toBe('undefined');
  });
});

describe('validateHostId', () => {
  it('accepts host-like ids and refuses others', () => {
    expect(validateHostId('host-1.eu_west')).toBe('host-1.eu_west');
    expect(validateHostId('1')).toBe('1');
    for (const id of ['', 'Host', '-h', '.h', 'h h', 'x'.repeat(64)]) {
      expect(refusal(() => validateHostId(id)).code).toBe('INVALID_HOST_ID');
    }
  });
});

describe('validateLabels', () => {
  it('returns a sorted copy of valid labels', () => {
    const labels = validateLabels({ zone: 'eu-1a', region: 'eu', 'pgs.io/tier': 'Gold', empty: '' });
    expect(Object.keys(labels)).toEqual(['empty', 'pgs.io/tier', 'region', 'zone']);
  });

  it('names the bad key or value', () => {
    expect(refusal(() => validateLabels({ Region: 'eu' })).field).toBe('labels key');
    expect(refusal(() => validateLabels({ region: 'eu west' }, 'spec.placement')).field).toBe('spec.placement.region');
    expect(refusal(() => validateLabels({ region: 1 as unknown as string })).code).toBe('INVALID_LABEL');
    expect(refusal(() => validateLabels([] as unknown as Record<string, string>)).field).toBe('labels');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(refusal(() => validateLabels(many)).allowed).toBe('at most 64 labels');
  });
});
