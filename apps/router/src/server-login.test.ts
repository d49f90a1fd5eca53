import { describe, expect, it } from 'vitest';
import { ServerLogin, ServerLogins } from './server-login.js';

const verifier = { salt: Buffer.alloc(16), iterations: 4096, storedKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) };

function make(): ServerLogin {
  return new ServerLogin(
    { connect: { lookup: () => undefined } as never, timeoutMs: 1000 },
    'acme',
    { major: 3, minor: 0 },
    new Map([['user', 'alice']]),
    Buffer.alloc(32, 3),
    verifier,
  );
}

describe('ServerLogins', () => {
  it('gives every client of a key the same login, and another key its own', () => {
    const logins = new ServerLogins();
    const a = logins.of('k1', make);
    expect(logins.of('k1', make)).toBe(a);
    expect(logins.of('k2', make)).not.toBe(a);
    expect(logins.size).toBe(2);
  });

  it('a login for a tenant no longer routed is refused, not attempted', () => {
    expect(() => make().login('app')).toThrow(/acme/);
  });
});
