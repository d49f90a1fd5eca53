import { describe, expect, it } from 'vitest';
import { identity, identityToString, identityToUri, parseIdentity, parseIdentityUri, sameIdentity } from './identity.js';

describe('identity', () => {
  it('formats and parses the CN and the SPIFFE URI', () => {
    const h1 = identity('host', 'h1');
    expect(identityToString(h1)).toBe('host:h1');
    expect(identityToUri(h1)).toBe('spiffe://pgs/host/h1');
    expect(parseIdentity('host:h1')).toEqual(h1);
    expect(parseIdentityUri('spiffe://pgs/router/r-1.eu')).toEqual({ kind: 'router', id: 'r-1.eu' });
    expect(sameIdentity(parseIdentity('operator:alice'), identity('operator', 'alice'))).toBe(true);
    expect(sameIdentity(h1, identity('router', 'h1'))).toBe(false);
  });

  it('refuses what is not an identity', () => {
    for (const bad of ['host', 'host:', 'tenant:acme', 'host:h1/x', 'host:-h', `host:${'a'.repeat(64)}`, 'host:h 1']) {
      expect(parseIdentity(bad)).toBeUndefined();
    }
    for (const bad of ['spiffe://other/host/h1', 'spiffe://pgs/host/h1/x', 'https://pgs/host/h1', 'spiffe://pgs/host']) {
      expect(parseIdentityUri(bad)).toBeUndefined();
    }
    expect(() => identity('host', '../etc')).toThrow(/identity id/);
    expect(() => identity('tenant' as 'host', 'x')).toThrow(/unknown identity kind/);
  });
});
