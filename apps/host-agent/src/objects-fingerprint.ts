// What the agent last made true inside a primary (its roles, databases, replication role and
// slots), as one digest. A suspended primary woken on the same data already holds exactly those
// objects, so its start can skip the admin connections that would only find them unchanged; any
// change to the spec changes the digest, and the full sync runs as before.
import { createHash } from 'node:crypto';
import type { ObjectsSpec } from './instance-admin.js';
import type { PrimaryReplicationSpec } from './replication-admin.js';

/** A digest of the objects a primary's spec asks for (the verifiers are hashed, never kept). */
export function objectsFingerprint(spec: ObjectsSpec & PrimaryReplicationSpec): string {
  const canonical = JSON.stringify([
    spec.roles.map((r) => [r.name, r.login, r.scramVerifier]),
    spec.databases.map((d) => [d.name, d.owner]),
    [...spec.dropRoles],
    [...spec.dropDatabases],
    spec.replicationUser,
    spec.replicationSecret,
    [...spec.replicationSlots],
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
