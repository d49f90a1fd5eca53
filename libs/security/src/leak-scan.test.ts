import { describe, expect, it } from 'vitest';
import { scanForLeaks } from './leak-scan.js';
import { KeyRing } from './secret-box.js';
import { scramVerifier } from './scram.js';
import { issueToken } from './tokens.js';

const now = new Date();

describe('scanForLeaks', () => {
  it('finds tokens, keys, passwords in connection strings, verifiers and known secrets', () => {
    const op = issueToken({ kind: 'operator', name: 'alice', role: 'reader', now }).token;
    const join = issueToken({ kind: 'host', now }).token;
    const log = [
      `{"msg":"auth","token":"${op}"}`,
      `joined with ${join}`,
      '-----BEGIN PRIVATE KEY-----',
      'connecting to postgres://acme:hunter2hunter2@127.0.0.11:20001/acme',
      'dsn host=127.0.0.1 port=5432 user=acme password=hunter2hunter2',
      `role verifier ${scramVerifier('pw', { iterations: 16 })}`,
      'generated password Zx9QmP4sT7wK',
    ].join('\n');
    const kinds = scanForLeaks(log, { knownSecrets: ['Zx9QmP4sT7wK'] }).map((f) => f.kind);
    expect(kinds).toEqual([
      'operator-token',
      'join-token',
      'private-key',
      'connection-string-password',
      'connection-string-password',
      'scram-verifier',
      'known-secret',
    ]);
    expect(JSON.stringify(scanForLeaks(log))).not.toContain(op);
  });

  it('finds nothing in redacted logs and sealed secrets', () => {
    const ring = new KeyRing([{ id: 'k1', key: Buffer.alloc(32, 7) }]);
    const clean = [
      '{"msg":"auth","token":"[redacted]","tokenLabel":"pgso_…1a2b3c4d"}',
      'connecting to postgres://acme@127.0.0.11:20001/acme',
      `stored ${ring.seal('hunter2hunter2', 'tenant:acme:owner')}`,
    ].join('\n');
    expect(scanForLeaks(clean, { knownSecrets: ['hunter2hunter2'] })).toEqual([]);
  });

  it('lets a store allow verifiers', () => {
    expect(scanForLeaks(scramVerifier('pw', { iterations: 16 }), { allow: ['scram-verifier'] })).toEqual([]);
  });
});
