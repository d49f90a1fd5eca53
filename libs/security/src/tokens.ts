/**
 * Join tokens (a host or router joins the fleet once with one) and operator bearer tokens (pgsctl,
 * REST). A token is 32 random bytes shown once; the platform keeps only its SHA-256 and compares in
 * constant time. Prefixes make tokens easy to find in a leaked log: `pgsj_` (join), `pgso_`
 * (operator). A join token may carry the fleet CA fingerprint after a dot, so the joiner can trust
 * the coordinator before it has any certificate (as kubeadm's discovery-token-ca-cert-hash does).
 * Pure: time is passed in; the caller stores records and marks a join token used atomically.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SecurityError } from './errors.js';
import { identity, type Identity } from './identity.js';
import { isRole, TENANT_SCOPED_ROLES, type OperatorPrincipal, type Role } from './rbac.js';

/** Who a token is for. */
export type TokenKind = 'host' | 'router' | 'operator';

const PREFIX = { join: 'pgsj_', operator: 'pgso_' } as const;
const SECRET = '[A-Za-z0-9_-]{43}';
const JOIN_TOKEN = new RegExp(`^${PREFIX.join}(${SECRET})(?:\\.(${SECRET}))?$`);
const OPERATOR_TOKEN = new RegExp(`^${PREFIX.operator}${SECRET}$`);

const HOUR_MS = 3600_000;
/** Join token lifetime when none is asked for, and the most allowed. */
export const JOIN_TOKEN_TTL = { defaultMs: HOUR_MS, maxMs: 24 * HOUR_MS } as const;
/** Operator token lifetime when none is asked for, and the most allowed. */
export const OPERATOR_TOKEN_TTL = { defaultMs: 90 * 24 * HOUR_MS, maxMs: 366 * 24 * HOUR_MS } as const;

/** What the platform stores about a token: never the token itself. */
export interface TokenRecord {
  /** SHA-256 of the whole token, hex: the lookup key. */
  readonly hash: string;
  readonly kind: TokenKind;
  /** Host id or router id the joiner will have ('' = it chooses), or the operator's name. */
  readonly name: string;
  /** Operator tokens only. */
  readonly role: Role | undefined;
  /** Tenant-scoped roles only. */
  readonly tenantIds: readonly string[];
  /** Epoch milliseconds. */
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  /** Join tokens work once. */
  readonly singleUse: boolean;
  readonly usedAtMs?: number | undefined;
  readonly revokedAtMs?: number | undefined;
}

/** What to issue. */
export interface TokenRequest {
  kind: TokenKind;
  /** Operator name (required), or the joining component's id ('' or absent = any). */
  name?: string;
  /** Operator tokens: the role. */
  role?: string;
  /** Tenant-scoped roles: the tenants (at least one). */
  tenantIds?: readonly string[];
  /** 0 or absent = the kind's default. */
  ttlMs?: number;
  now: Date;
  /** Join tokens: the fleet CA fingerprint (certificateFingerprint) to pin. */
  caFingerprint?: string;
}

/** Why a token was refused; safe to log and audit. */
export type TokenRefusal = 'malformed' | 'unknown' | 'expired' | 'used' | 'revoked' | 'wrong-kind' | 'wrong-id';

function invalid(message: string): SecurityError {
  return new SecurityError('TOKEN_INVALID', message);
}

/** SHA-256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short, non-secret label for logs and audit (`pgso_…1a2b3c4d`): the token cannot be rebuilt from it. */
export function tokenLabel(tokenOrRecord: string | TokenRecord): string {
  const hash = typeof tokenOrRecord === 'string' ? hashToken(tokenOrRecord) : tokenOrRecord.hash;
  const kind =
    typeof tokenOrRecord === 'string'
      ? tokenOrRecord.startsWith(PREFIX.join)
        ? PREFIX.join
        : PREFIX.operator
      : tokenOrRecord.kind === 'operator'
        ? PREFIX.operator
        : PREFIX.join;
  return `${kind}…${hash.slice(0, 8)}`;
}

/** 'join', 'operator' or undefined: the token's format, nothing more. */
export function tokenFormat(token: string): 'join' | 'operator' | undefined {
  if (JOIN_TOKEN.test(token)) return 'join';
  if (OPERATOR_TOKEN.test(token)) return 'operator';
  return undefined;
}

/** The CA fingerprint a join token pins, if any. */
export function joinTokenCaFingerprint(token: string): string | undefined {
  return JOIN_TOKEN.exec(token)?.[2];
}

/** The token in an `authorization` value (`Bearer <token>`, scheme case-insensitive), or undefined. */
export function parseBearer(authorization: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  return m?.[1];
}

function ttlOf(request: TokenRequest, bounds: { defaultMs: number; maxMs: number }): number {
  const ttl = request.ttlMs === undefined || request.ttlMs === 0 ? bounds.defaultMs : request.ttlMs;
  if (!Number.isFinite(ttl) || ttl <= 0 || ttl > bounds.maxMs) {
    throw invalid(`token ttl must be between 1 s and ${bounds.maxMs / HOUR_MS} h, got ${request.ttlMs} ms`);
  }
  return ttl;
}

/** Issues a token: the string to show once, and the record to store. Validates kind, role, scope and ttl. */
export function issueToken(request: TokenRequest): { token: string; record: TokenRecord } {
  const secret = randomBytes(32).toString('base64url');
  const now = request.now.getTime();
  const tenantIds = [...new Set(request.tenantIds ?? [])];
  let token: string;
  let record: TokenRecord;
  if (request.kind === 'operator') {
    const name = request.name ?? '';
    identity('operator', name); // validates the name
    const role = request.role ?? '';
    if (!isRole(role)) throw invalid(`unknown role "${role}" (fleet-admin, operator, reader, tenant-writer, tenant-reader)`);
    const scoped = TENANT_SCOPED_ROLES.includes(role);
    if (scoped && tenantIds.length === 0) throw invalid(`role ${role} needs at least one tenant`);
    if (!scoped && tenantIds.length > 0) throw invalid(`role ${role} is fleet-wide; tenants are only for tenant-writer and tenant-reader`);
    token = `${PREFIX.operator}${secret}`;
    record = {
      hash: hashToken(token),
      kind: 'operator',
      name,
      role,
      tenantIds,
      createdAtMs: now,
      expiresAtMs: now + ttlOf(request, OPERATOR_TOKEN_TTL),
      singleUse: false,
    };
  } else if (request.kind === 'host' || request.kind === 'router') {
    const name = request.name ?? '';
    if (name !== '') identity(request.kind, name);
    if (request.role !== undefined && request.role !== '') throw invalid('join tokens carry no role');
    if (tenantIds.length > 0) throw invalid('join tokens carry no tenants');
    if (request.caFingerprint !== undefined && !new RegExp(`^${SECRET}$`).test(request.caFingerprint))
      throw invalid('CA fingerprint must be 43 base64url characters (SHA-256)');
    token = `${PREFIX.join}${secret}${request.caFingerprint ? `.${request.caFingerprint}` : ''}`;
    record = {
      hash: hashToken(token),
      kind: request.kind,
      name,
      role: undefined,
      tenantIds,
      createdAtMs: now,
      expiresAtMs: now + ttlOf(request, JOIN_TOKEN_TTL),
      singleUse: true,
    };
  } else {
    throw invalid(`unknown token kind "${String(request.kind)}" (host, router, operator)`);
  }
  return { token, record: Object.freeze(record) };
}

function sameHash(token: string, record: TokenRecord): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(record.hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Checks a presented token against its stored record (found by hashToken): hash, expiry, use, revocation. */
export function checkToken(token: string, record: TokenRecord | undefined, now: Date): { ok: true } | { ok: false; refusal: TokenRefusal } {
  if (tokenFormat(token) === undefined) return { ok: false, refusal: 'malformed' };
  if (!record || !sameHash(token, record)) return { ok: false, refusal: 'unknown' };
  if (record.revokedAtMs !== undefined) return { ok: false, refusal: 'revoked' };
  if (record.singleUse && record.usedAtMs !== undefined) return { ok: false, refusal: 'used' };
  if (now.getTime() >= record.expiresAtMs) return { ok: false, refusal: 'expired' };
  return { ok: true };
}

/** The principal an operator token stands for, or a refusal. */
export function authenticateOperatorToken(
  token: string,
  record: TokenRecord | undefined,
  now: Date,
): { ok: true; principal: OperatorPrincipal } | { ok: false; refusal: TokenRefusal } {
  const checked = checkToken(token, record, now);
  if (!checked.ok) return checked;
  if (record!.kind !== 'operator' || record!.role === undefined) return { ok: false, refusal: 'wrong-kind' };
  return { ok: true, principal: Object.freeze({ kind: 'operator', name: record!.name, role: record!.role, tenantIds: [...record!.tenantIds] }) };
}

/**
 * Redeems a join token for a component that says it is `kind` with id `claimedId`: returns the
 * identity to put in its certificate and the record marked used (store it in the same transaction
 * that checks `usedAtMs` is still unset, so a token cannot be redeemed twice concurrently).
 */
export function redeemJoinToken(
  token: string,
  record: TokenRecord | undefined,
  claim: { kind: 'host' | 'router'; id: string },
  now: Date,
): { ok: true; identity: Identity; record: TokenRecord } | { ok: false; refusal: TokenRefusal } {
  const checked = checkToken(token, record, now);
  if (!checked.ok) return checked;
  if (tokenFormat(token) !== 'join' || record!.kind !== claim.kind) return { ok: false, refusal: 'wrong-kind' };
  if (record!.name !== '' && record!.name !== claim.id) return { ok: false, refusal: 'wrong-id' };
  let who: Identity;
  try {
    who = identity(claim.kind, claim.id);
  } catch (err) {
    if (err instanceof SecurityError) return { ok: false, refusal: 'wrong-id' };
    throw err;
  }
  return { ok: true, identity: who, record: Object.freeze({ ...record!, usedAtMs: now.getTime() }) };
}
