import { describe, expect, it } from 'vitest';
import { objectsFingerprint } from './objects-fingerprint.js';

const spec = {
  roles: [{ name: 'acme', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b', login: true }],
  databases: [{ name: 'acme', owner: 'acme' }],
  dropRoles: [] as string[],
  dropDatabases: [] as string[],
  replicationUser: 'pgs_replication',
  replicationSecret: 'SCRAM-SHA-256$4096:cmVw$c:d',
  replicationSlots: ['pgs_h2'],
};

describe('objectsFingerprint', () => {
  it('is the same for the same objects, and never shows a verifier', () => {
    const a = objectsFingerprint(spec);
    expect(objectsFingerprint({ ...spec, roles: [...spec.roles] })).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toContain('SCRAM');
  });

  it('changes with any object a woken primary would have to sync', () => {
    const a = objectsFingerprint(spec);
    const changed = [
      { ...spec, roles: [{ ...spec.roles[0]!, scramVerifier: 'SCRAM-SHA-256$4096:bmV3$e:f' }] },
      { ...spec, roles: [{ ...spec.roles[0]!, login: false }] },
      { ...spec, databases: [...spec.databases, { name: 'reports', owner: 'acme' }] },
      { ...spec, dropRoles: ['old'] },
      { ...spec, dropDatabases: ['old'] },
      { ...spec, replicationSecret: 'SCRAM-SHA-256$4096:b3RoZXI=$g:h' },
      { ...spec, replicationSlots: ['pgs_h2', 'pgs_h3'] },
    ];
    for (const c of changed) expect(objectsFingerprint(c)).not.toBe(a);
  });
});
