import { describe, expect, it } from 'vitest';
import { isScramVerifier, quoteIdent, quoteLiteral, verifierLiteral } from './sql-quote.js';
import { scramVerifier } from './testing/scram-verifier.js';

describe('sql quoting', () => {
  it('double-quotes identifiers and doubles embedded quotes', () => {
    expect(quoteIdent('acme')).toBe('"acme"');
    expect(quoteIdent('x"; DROP ROLE postgres; --')).toBe('"x""; DROP ROLE postgres; --"');
    expect(() => quoteIdent('')).toThrow(/identifier/);
    expect(() => quoteIdent('a\0b')).toThrow(/identifier/);
    expect(() => quoteIdent('x'.repeat(64))).toThrow(/identifier/);
    expect(quoteIdent('x'.repeat(63))).toHaveLength(65);
  });

  it('quotes literals', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
  });

  it('accepts SCRAM-SHA-256 verifiers only', () => {
    const v = scramVerifier('secret-password');
    expect(isScramVerifier(v)).toBe(true);
    expect(verifierLiteral(v)).toBe(`'${v}'`);
    for (const bad of ['secret-password', 'md5abcdef', `${v}'; DROP ROLE x; --`, 'SCRAM-SHA-256$4096:salt', '']) {
      expect(isScramVerifier(bad)).toBe(false);
      expect(() => verifierLiteral(bad)).toThrow(expect.objectContaining({ code: 'INVALID_VERIFIER' }));
    }
  });
});
