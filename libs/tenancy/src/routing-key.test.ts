import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { DEFAULT_ROUTING_ORDER, RoutingKeyError, resolveRoutingKey, validateRoutingOrder, type RoutingOptions, type RoutingSource } from './routing-key.js';

const defaults: RoutingOptions = { order: DEFAULT_ROUTING_ORDER, sniDomain: 'db.example.com' };

/** Resolves with the given startup parameters (and SNI). */
function route(params: Record<string, string>, sni?: string, options: RoutingOptions = defaults) {
  return resolveRoutingKey({ parameters: new Map(Object.entries(params)), ...(sni === undefined ? {} : { sniHostname: sni }) }, options);
}

/** The RoutingKeyError code thrown. */
function refused(fn: () => unknown): RoutingKeyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RoutingKeyError) return err;
    throw err;
  }
  throw new Error('expected a RoutingKeyError');
}

describe('resolveRoutingKey', () => {
  it('defaults to sni, options, user_suffix, user; database is off', () => {
    expect(DEFAULT_ROUTING_ORDER).toEqual(['sni', 'options', 'user_suffix', 'user']);
  });

  it('takes the tenant from the SNI name', () => {
    expect(route({ user: 'alice' }, 'acme.db.example.com')).toEqual({ tenantId: 'acme', user: 'alice', userRewritten: false, source: 'sni' });
    expect(route({ user: 'alice' }, 'ACME.DB.Example.com.').tenantId).toBe('acme');
  });

  it('ignores SNI names outside the domain, and SNI when no domain is configured', () => {
    expect(route({ user: 'acme' }, 'acme.other.com').source).toBe('user');
    expect(route({ user: 'acme' }, 'db.example.com').source).toBe('user');
    expect(route({ user: 'acme' }, 'globex.db.example.com', { order: DEFAULT_ROUTING_ORDER }).tenantId).toBe('acme');
  });

  it('refuses an SNI name under the domain that is not a tenant id', () => {
    expect(refused(() => route({ user: 'a' }, 'x.acme.db.example.com'))).toMatchObject({ code: 'INVALID_TENANT', source: 'sni' });
    expect(refused(() => route({ user: 'a' }, 'pg_x.db.example.com')).code).toBe('INVALID_TENANT');
  });

  it('takes the tenant from options and strips it from what is forwarded', () => {
    expect(route({ user: 'alice', options: '-c pgs.tenant=acme' })).toEqual({ tenantId: 'acme', user: 'alice', userRewritten: false, source: 'options' });
    const both = route({ user: 'alice', options: '-c statement_timeout=5s -cpgs.tenant=acme --search_path=my\\ schema' });
    expect(both.options).toBe('-c statement_timeout=5s --search_path=my\\ schema');
    expect(route({ user: 'alice', options: 'tenant=acme' })).toMatchObject({ tenantId: 'acme', source: 'options' });
    expect(route({ user: 'alice', options: 'tenant=acme' }).options).toBeUndefined();
    expect(route({ user: 'acme', options: '-c work_mem=64MB' }).options).toBe('-c work_mem=64MB');
  });

  it('refuses options that name two tenants or an invalid one', () => {
    expect(refused(() => route({ user: 'a', options: '-c pgs.tenant=acme tenant=globex' })).code).toBe('CONFLICTING_TENANT');
    expect(refused(() => route({ user: 'a', options: '-c pgs.tenant=Acme' })).code).toBe('INVALID_TENANT');
    expect(route({ user: 'a', options: '-c pgs.tenant=acme tenant=acme' }).tenantId).toBe('acme');
  });

  it('leaves options untouched when the options source is off', () => {
    const decision = route({ user: 'acme', options: 'tenant=globex' }, undefined, { order: ['user'] });
    expect(decision).toMatchObject({ tenantId: 'acme', options: 'tenant=globex' });
  });

  it('splits user.tenant at the last dot and rewrites the user', () => {
    expect(route({ user: 'alice.acme' })).toEqual({ tenantId: 'acme', user: 'alice', userRewritten: true, source: 'user_suffix' });
    expect(route({ user: 'a.b.acme' })).toMatchObject({ tenantId: 'acme', user: 'a.b' });
  });

  it("rewrites libpq's default database (the suffixed user) along with the user", () => {
    expect(route({ user: 'alice.acme', database: 'alice.acme' })).toMatchObject({ user: 'alice', database: 'alice' });
    expect(route({ user: 'alice.acme', database: 'app' }).database).toBeUndefined();
  });

  it('refuses a user suffix that is not a tenant id, or no user before it', () => {
    expect(refused(() => route({ user: 'alice.Acme' }))).toMatchObject({ code: 'INVALID_TENANT', source: 'user_suffix' });
    expect(refused(() => route({ user: '.acme' })).code).toBe('INVALID_TENANT');
    expect(refused(() => route({ user: 'alice.' })).code).toBe('INVALID_TENANT');
  });

  it('routes a user name equal to the tenant (the owner role is named like it)', () => {
    expect(route({ user: 'acme', database: 'acme' })).toEqual({ tenantId: 'acme', user: 'acme', userRewritten: false, source: 'user' });
  });

  it('lets explicit markers that agree through, reporting the first in order', () => {
    const decision = route({ user: 'alice.acme', options: '-c pgs.tenant=acme' }, 'acme.db.example.com');
    expect(decision).toMatchObject({ tenantId: 'acme', source: 'sni', user: 'alice', userRewritten: true });
    const reordered = route({ user: 'alice.acme' }, 'acme.db.example.com', { order: ['user_suffix', 'sni'], sniDomain: 'db.example.com' });
    expect(reordered.source).toBe('user_suffix');
  });

  it('refuses explicit markers that disagree, naming both', () => {
    const err = refused(() => route({ user: 'alice.globex' }, 'acme.db.example.com'));
    expect(err).toMatchObject({ code: 'CONFLICTING_TENANT', source: 'user_suffix', kind: 'user' });
    expect(err.message).toBe('routing sources disagree: sni names tenant acme but user_suffix names globex');
    expect(refused(() => route({ user: 'a', options: 'tenant=globex' }, 'acme.db.example.com')).code).toBe('CONFLICTING_TENANT');
  });

  it('never lets a plain user name override an explicit marker', () => {
    expect(route({ user: 'globex' }, 'acme.db.example.com')).toMatchObject({ tenantId: 'acme', user: 'globex', source: 'sni' });
  });

  it('uses the database name only when enabled, as a fallback in order', () => {
    const order: RoutingSource[] = ['options', 'database', 'user'];
    expect(route({ user: 'app', database: 'acme' }, undefined, { order })).toMatchObject({ tenantId: 'acme', source: 'database' });
    expect(route({ user: 'app', database: 'acme' }).tenantId).toBe('app');
    expect(route({ user: 'app', database: 'postgres' }, undefined, { order }).source).toBe('user');
  });

  it('refuses when no source names a tenant, or the user is missing', () => {
    expect(refused(() => route({ user: 'Alice' })).code).toBe('NO_TENANT');
    expect(refused(() => route({ user: 'postgres' })).message).toContain('tried sni, options, user_suffix, user');
    expect(refused(() => route({ user: 'acme' }, undefined, { order: [] })).code).toBe('NO_TENANT');
    expect(refused(() => route({ database: 'acme' })).code).toBe('MISSING_USER');
    expect(refused(() => route({ user: '' })).code).toBe('MISSING_USER');
  });

  it('ignores the user suffix when that source is off', () => {
    expect(route({ user: 'alice.acme' }, 'acme.db.example.com', { order: ['sni'], sniDomain: 'db.example.com' })).toMatchObject({
      user: 'alice.acme',
      userRewritten: false,
    });
  });
});

describe('validateRoutingOrder', () => {
  it('accepts known, distinct sources and refuses others', () => {
    expect(validateRoutingOrder(['user', 'sni'])).toEqual(['user', 'sni']);
    expect(() => validateRoutingOrder(['sni', 'sni'])).toThrow(ValidationError);
    expect(() => validateRoutingOrder(['cookie'])).toThrow(/distinct sources from: sni, options/);
  });
});
