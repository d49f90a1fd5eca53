/**
 * The digest of a host's full desired set: the set as the agent receives it (each instance as its
 * InstanceSpec, encoded), in tenant order, without the generation and leader epoch it goes out
 * with. Two sets with the same digest tell the agent the same thing.
 */
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { DesiredInstancesSchema } from '@pgs/proto';
import type { HostDesiredSet } from '../services/desired-set.js';
import { toInstanceSpec } from './mappers/agent-mapper.js';

/** Hex SHA-256 of the set's content. */
export function desiredSetDigest(set: HostDesiredSet): string {
  const instances = [...set.instances].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0)).map(toInstanceSpec);
  const removedTenantIds = [...new Set(set.removedTenantIds)].sort();
  const bytes = toBinary(DesiredInstancesSchema, create(DesiredInstancesSchema, { full: true, instances, removedTenantIds }));
  return createHash('sha256').update(bytes).digest('hex');
}
