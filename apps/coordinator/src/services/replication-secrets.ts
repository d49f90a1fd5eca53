/**
 * The per-tenant replication role's password. A replica must log in with it, so unlike tenant
 * users' passwords it cannot be reduced to a verifier: it is generated once, stored only sealed
 * (AES-256-GCM, libs/security KeyRing, bound to the tenant) beside its SCRAM verifier, opened when a
 * replica's desired spec is built, and sent to that replica's agent only. The primary gets the
 * verifier (secrets the platform must keep are encrypted at rest).
 */
import { REPLICATION_ROLE } from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import { scramVerifier } from '@pgs/security';
import { generatePassword } from '../domain/generated-password.js';
import type { StoreReads, StoreTx } from '../store/contract.js';

/** The replication role's name and credentials for one tenant. */
export interface ReplicationCredentials {
  user: string;
  password: string;
  verifier: string;
}

/** The AAD context the replication password is sealed with (key rotation re-seals with it). */
export function replicationSecretContext(tenantId: string): string {
  return `tenant:${tenantId}:replication-password`;
}

const aad = replicationSecretContext;

/** Creates the tenant's replication secret when it has none (inside the caller's transaction). */
export async function ensureReplicationSecret(tx: StoreTx, keys: KeyRing, tenantId: string, now: number): Promise<void> {
  if (await tx.secrets.getTenantSecret(tenantId, REPLICATION_ROLE)) return;
  const password = generatePassword();
  await tx.secrets.insertTenantSecret({
    tenantId,
    name: REPLICATION_ROLE,
    sealed: keys.seal(password, aad(tenantId)),
    verifier: scramVerifier(password),
    createdAt: now,
  });
}

/** The tenant's replication credentials, opened; undefined when it has none yet. */
export async function replicationCredentials(tx: StoreReads, keys: KeyRing, tenantId: string): Promise<ReplicationCredentials | undefined> {
  const secret = await tx.secrets.getTenantSecret(tenantId, REPLICATION_ROLE);
  if (!secret) return undefined;
  return { user: REPLICATION_ROLE, password: keys.openText(secret.sealed, aad(tenantId)), verifier: secret.verifier };
}
