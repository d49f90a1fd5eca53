/**
 * The security tables of the SQLite store (migration 3): the fleet CA with its sealed key, the
 * join/operator token records (hashes only) and the sealed secrets. Statements on the same
 * connection as SqliteTables, run inside the transaction SqliteStore holds open.
 */
import type Database from 'better-sqlite3';
import { isRole, type TokenKind, type TokenRecord } from '@pgs/security';
import { StatementCache } from './statement-cache.js';
import type { SealedAt, StoredCa, StoredFleetSecret, StoredToken } from './contract.js';

type Row = Record<string, unknown>;

const numOrUndefined = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function tokenFromRow(r: Row): StoredToken {
  const role = r.role === null ? undefined : String(r.role);
  return {
    hash: String(r.hash),
    kind: String(r.kind) as TokenKind,
    name: String(r.name),
    role: role !== undefined && isRole(role) ? role : undefined,
    tenantIds: JSON.parse(String(r.tenant_ids)) as string[],
    createdAtMs: Number(r.created_at),
    expiresAtMs: Number(r.expires_at),
    singleUse: Number(r.single_use) === 1,
    usedAtMs: numOrUndefined(r.used_at),
    revokedAtMs: numOrUndefined(r.revoked_at),
    createdBy: String(r.created_by),
  };
}

/** The security tables. */
export class SecurityStore {
  /** Each statement prepared once: a token is looked up on every API call. */
  private readonly statements: StatementCache;

  constructor(db: Database.Database) {
    this.statements = new StatementCache(db);
  }

  private prepare(sql: string): Database.Statement {
    return this.statements.get(sql);
  }

  /** The fleet CA, if one was created. */
  getCa(): StoredCa | undefined {
    const r = this.prepare('SELECT * FROM fleet_ca WHERE id = 1').get() as Row | undefined;
    return r ? { certPem: String(r.cert_pem), keySealed: String(r.key_sealed), createdAt: Number(r.created_at) } : undefined;
  }

  /** Stores the fleet CA once; returns the stored one (an existing CA is never replaced). */
  putCaOnce(ca: StoredCa): StoredCa {
    this.prepare('INSERT OR IGNORE INTO fleet_ca (id, cert_pem, key_sealed, created_at) VALUES (1, ?, ?, ?)').run(ca.certPem, ca.keySealed, ca.createdAt);
    return this.getCa()!;
  }

  /** Stores a new token record. */
  insertToken(record: TokenRecord, createdBy: string): void {
    this.prepare(
      'INSERT INTO tokens (hash, kind, name, role, tenant_ids, created_at, expires_at, single_use, used_at, revoked_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)',
    ).run(
      record.hash,
      record.kind,
      record.name,
      record.role ?? null,
      JSON.stringify(record.tenantIds),
      record.createdAtMs,
      record.expiresAtMs,
      record.singleUse ? 1 : 0,
      createdBy,
    );
  }

  /** The record of a token hash. */
  findToken(hash: string): StoredToken | undefined {
    const r = this.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  /** The live (not revoked) operator token of a name. */
  findOperatorToken(name: string): StoredToken | undefined {
    const r = this.prepare("SELECT * FROM tokens WHERE kind = 'operator' AND name = ? AND revoked_at IS NULL").get(name) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  /** Operator tokens, newest first; revoked ones only when asked. */
  listOperatorTokens(includeRevoked: boolean): StoredToken[] {
    const sql = `SELECT * FROM tokens WHERE kind = 'operator'${includeRevoked ? '' : ' AND revoked_at IS NULL'} ORDER BY created_at DESC, name`;
    return (this.prepare(sql).all() as Row[]).map(tokenFromRow);
  }

  /** Marks a single-use token used, only if nobody did first; false = already used (or gone). */
  markTokenUsed(hash: string, at: number): boolean {
    return this.prepare('UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL').run(at, hash).changes === 1;
  }

  /** Revokes the live operator token of a name; false when there is none. */
  revokeOperatorToken(name: string, at: number): boolean {
    return this.prepare("UPDATE tokens SET revoked_at = ? WHERE kind = 'operator' AND name = ? AND revoked_at IS NULL").run(at, name).changes === 1;
  }

  /** A sealed fleet secret (the backup cipher pass, the S3 credentials). */
  getFleetSecret(name: string): StoredFleetSecret | undefined {
    const r = this.prepare('SELECT * FROM fleet_secrets WHERE name = ?').get(name) as Row | undefined;
    return r ? { name: String(r.name), keyId: String(r.key_id), sealed: String(r.sealed), createdAt: Number(r.created_at) } : undefined;
  }

  /** Stores a fleet secret once; returns the stored one (an existing secret is never replaced). */
  putFleetSecretOnce(secret: StoredFleetSecret): StoredFleetSecret {
    this.prepare('INSERT OR IGNORE INTO fleet_secrets (name, key_id, sealed, created_at) VALUES (?, ?, ?, ?)').run(
      secret.name,
      secret.keyId,
      secret.sealed,
      secret.createdAt,
    );
    return this.getFleetSecret(secret.name)!;
  }

  /** Stores or replaces a fleet secret (credentials given again at a start). */
  putFleetSecret(secret: StoredFleetSecret): void {
    this.prepare('INSERT OR REPLACE INTO fleet_secrets (name, key_id, sealed, created_at) VALUES (?, ?, ?, ?)').run(
      secret.name,
      secret.keyId,
      secret.sealed,
      secret.createdAt,
    );
  }

  /**
   * Re-seals every sealed value (the CA key, each tenant secret, each fleet secret) with `reseal`,
   * inside the caller's transaction: either all move to the new key or none does. Returns how many changed.
   */
  resealAll(reseal: (sealed: string, where: SealedAt) => string): number {
    let changed = 0;
    const ca = this.getCa();
    if (ca) {
      const next = reseal(ca.keySealed, { table: 'fleet_ca' });
      if (next !== ca.keySealed) {
        this.prepare('UPDATE fleet_ca SET key_sealed = ? WHERE id = 1').run(next);
        changed++;
      }
    }
    const secrets = this.prepare('SELECT tenant_id, name, sealed FROM tenant_secrets').all() as Row[];
    const update = this.prepare('UPDATE tenant_secrets SET sealed = ? WHERE tenant_id = ? AND name = ?');
    for (const s of secrets) {
      const sealed = String(s.sealed);
      const next = reseal(sealed, { table: 'tenant_secrets', tenantId: String(s.tenant_id), name: String(s.name) });
      if (next !== sealed) {
        update.run(next, s.tenant_id, s.name);
        changed++;
      }
    }
    const fleet = this.prepare('SELECT name, sealed FROM fleet_secrets').all() as Row[];
    const updateFleet = this.prepare('UPDATE fleet_secrets SET sealed = ? WHERE name = ?');
    for (const s of fleet) {
      const sealed = String(s.sealed);
      const next = reseal(sealed, { table: 'fleet_secrets', name: String(s.name) });
      if (next !== sealed) {
        updateFleet.run(next, s.name);
        changed++;
      }
    }
    const upgrades = this.prepare("SELECT tenant_id, json_extract(record, '$.sealedPassword') AS sealed FROM upgrades").all() as Row[];
    const updateUpgrade = this.prepare("UPDATE upgrades SET record = json_set(record, '$.sealedPassword', ?) WHERE tenant_id = ?");
    for (const u of upgrades) {
      const sealed = String(u.sealed ?? '');
      if (sealed === '') continue;
      const next = reseal(sealed, { table: 'upgrades', tenantId: String(u.tenant_id) });
      if (next !== sealed) {
        updateUpgrade.run(next, u.tenant_id);
        changed++;
      }
    }
    return changed;
  }
}
