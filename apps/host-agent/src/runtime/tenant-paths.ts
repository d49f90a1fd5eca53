/**
 * A tenant id becomes a directory and a container name, so every runtime checks it against the
 * domain rule first: an id from the wire is never trusted to stay inside the data root.
 */
import { isValidTenantId } from '@pgs/tenancy';
import { AgentError } from '../errors.js';

/** Returns the tenant id, or throws AgentError INVALID_IDENTIFIER. */
export function checkedTenantId(tenantId: string): string {
  if (!isValidTenantId(tenantId))
    throw new AgentError('INVALID_IDENTIFIER', `not a valid tenant id: ${JSON.stringify(String(tenantId).slice(0, 80))}`, { kind: 'user' });
  return tenantId;
}
