/**
 * Join tokens, operator tokens and key rotation. A token is shown once, to its creator;
 * the store keeps its SHA-256 only. At the first start an initial fleet-admin token is written to a
 * file (mode 0600) in the data dir: the log says where, never what.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPLICATION_ROLE } from '@pgs/tenancy';
import { Code, RpcError } from '@pgs/rpc';
import { issueToken, SecurityError, tokenLabel, type FleetCa, type KeyRing, type TokenKind } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import { fleetSecretContext } from '../services/backup-repository.js';
import { replicationSecretContext } from '../services/replication-secrets.js';
import { upgradePasswordContext } from '../services/upgrade-secret.js';
import { StoreConflictError } from '../domain/errors.js';
import type { Store, StoredToken } from '../store/contract.js';
import { CA_KEY_CONTEXT } from './fleet-pki.js';

/** The name of the operator token the first start creates. */
export const BOOTSTRAP_ADMIN = 'admin';

/** Token and key operations, with their audit events. */
export class TokenService {
  constructor(private readonly deps: { store: Store; keys: KeyRing; ca: FleetCa | undefined; clock: () => number; log: Logger }) {}

  private invalid(err: unknown): never {
    if (err instanceof SecurityError) throw new RpcError(Code.INVALID_ARGUMENT, err.message, { errorCode: err.code, cause: err });
    throw err;
  }

  /** A single-use join token for a host or router (optionally for one id). */
  async createJoinToken(input: { kind: string; componentId: string; ttlSeconds: number }, principal: string): Promise<{ token: string; expiresAt: string }> {
    if (input.kind !== 'host' && input.kind !== 'router')
      throw new RpcError(Code.INVALID_ARGUMENT, `kind must be host or router, got "${input.kind}"`, { details: { field: 'kind' } });
    if (!this.deps.ca) {
      throw new RpcError(
        Code.FAILED_PRECONDITION,
        'this coordinator runs with its own PKI (--tls-*); components get certificates from that PKI, not join tokens',
        { errorCode: 'NO_FLEET_CA' },
      );
    }
    const now = this.deps.clock();
    let issued: ReturnType<typeof issueToken>;
    try {
      issued = issueToken({
        kind: input.kind as TokenKind,
        name: input.componentId,
        ttlMs: input.ttlSeconds * 1000,
        now: new Date(now),
        caFingerprint: this.deps.ca.fingerprint,
      });
    } catch (err) {
      this.invalid(err);
    }
    await this.deps.store.transaction(async (tx) => {
      await tx.tokens.insert(issued.record, principal);
      await tx.events.append({
        time: now,
        principal,
        action: 'token.join.create',
        message: `join token for ${input.kind}${input.componentId ? ` "${input.componentId}"` : ''} created`,
        details: {
          kind: input.kind,
          componentId: input.componentId,
          token: tokenLabel(issued.record),
          expiresAt: new Date(issued.record.expiresAtMs).toISOString(),
        },
      });
    });
    return { token: issued.token, expiresAt: new Date(issued.record.expiresAtMs).toISOString() };
  }

  /** An operator bearer token with a role (and tenants for the tenant-scoped roles). */
  async createOperatorToken(
    input: { name: string; role: string; tenantIds: readonly string[]; ttlSeconds: number },
    principal: string,
  ): Promise<{ token: string; record: StoredToken }> {
    const now = this.deps.clock();
    let issued: ReturnType<typeof issueToken>;
    try {
      issued = issueToken({
        kind: 'operator',
        name: input.name,
        role: input.role,
        tenantIds: input.tenantIds,
        ttlMs: input.ttlSeconds * 1000,
        now: new Date(now),
      });
    } catch (err) {
      this.invalid(err);
    }
    await this.deps.store.transaction(async (tx) => {
      const existing = await tx.tokens.findOperator(input.name);
      // An expired token keeps its name until revoked; free it so the name can be reused.
      if (existing && existing.expiresAtMs <= now) await tx.tokens.revokeOperator(input.name, now);
      try {
        await tx.tokens.insert(issued.record, principal);
      } catch (err) {
        if (err instanceof StoreConflictError)
          throw new RpcError(Code.ALREADY_EXISTS, `an operator token named "${input.name}" exists; revoke it first or choose another name`, {
            errorCode: 'TOKEN_NAME_TAKEN',
          });
        throw err;
      }
      await tx.events.append({
        time: now,
        principal,
        action: 'token.operator.create',
        message: `operator token "${input.name}" (${input.role}) created`,
        details: {
          name: input.name,
          role: input.role,
          tenants: issued.record.tenantIds.join(','),
          token: tokenLabel(issued.record),
          expiresAt: new Date(issued.record.expiresAtMs).toISOString(),
        },
      });
    });
    return { token: issued.token, record: { ...issued.record, createdBy: principal } };
  }

  /** Live operator tokens (names, roles, scopes, expiry; never a token or hash). */
  async listOperatorTokens(): Promise<StoredToken[]> {
    return await this.deps.store.read.tokens.listOperators(false);
  }

  /** Revokes the live operator token of a name; refused at once on its next use. */
  async revokeOperatorToken(name: string, principal: string): Promise<void> {
    const now = this.deps.clock();
    await this.deps.store.transaction(async (tx) => {
      if (!(await tx.tokens.revokeOperator(name, now)))
        throw new RpcError(Code.NOT_FOUND, `no live operator token named "${name}"`, { errorCode: 'TOKEN_NOT_FOUND' });
      await tx.events.append({ time: now, principal, action: 'token.operator.revoke', message: `operator token "${name}" revoked`, details: { name } });
    });
  }

  /** Re-seals every stored secret under the active key; returns the key id and how many changed. */
  async rotateEncryptionKey(principal: string): Promise<{ keyId: string; secretsReencrypted: number }> {
    const { keys } = this.deps;
    const count = await this.deps.store.transaction((tx) =>
      tx.secrets.resealAll((sealed, where) => {
        if (where.table === 'fleet_ca') return keys.reseal(sealed, CA_KEY_CONTEXT);
        if (where.table === 'fleet_secrets') return keys.reseal(sealed, fleetSecretContext(where.name));
        if (where.table === 'upgrades') return keys.reseal(sealed, upgradePasswordContext(where.tenantId));
        if (where.name === REPLICATION_ROLE) return keys.reseal(sealed, replicationSecretContext(where.tenantId));
        throw new RpcError(Code.INTERNAL, `tenant secret "${where.name}" of "${where.tenantId}" has no known context; nothing was re-sealed`);
      }),
    );
    await this.deps.store.transaction((tx) =>
      tx.events.append({
        time: this.deps.clock(),
        principal,
        action: 'secrets.rotate',
        message: `${count} secret(s) re-sealed under key "${keys.activeKeyId}"`,
        details: { keyId: keys.activeKeyId, count: String(count) },
      }),
    );
    return { keyId: keys.activeKeyId, secretsReencrypted: count };
  }

  /**
   * At the first start (no operator token ever made), creates the fleet-admin token and writes it
   * to `file` (mode 0600). Returns the file when it did, else undefined.
   */
  async bootstrapAdmin(file: string): Promise<string | undefined> {
    if ((await this.deps.store.read.tokens.listOperators(true)).length > 0) return undefined;
    const { token } = await this.createOperatorToken({ name: BOOTSTRAP_ADMIN, role: 'fleet-admin', tenantIds: [], ttlSeconds: 0 }, 'system:bootstrap');
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
    return file;
  }
}
