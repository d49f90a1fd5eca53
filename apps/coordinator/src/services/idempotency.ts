/**
 * Idempotency keys: a create request that carries a key is answered once; a retry with the same
 * key (within the window) gets the first answer back, read in the same transaction that would
 * otherwise create, so two racing retries cannot both create. The same key with a different
 * request is refused. A generated password is never written to the store: it is kept in memory
 * for a short while so a retry right after a lost answer still gets it.
 */
import { createHash } from 'node:crypto';
import { PreconditionError } from '../domain/errors.js';
import type { IdempotencyRecord, StoreTx } from '../store/contract.js';

/** How long a key is honoured (the contract says 24 h). */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600_000;
/** How long a generated password stays available to retries. */
export const PASSWORD_RETRY_WINDOW_MS = 15 * 60_000;

/** Hash of the request, secrets excluded, to detect a key reused for another request. */
export function requestHash(request: Record<string, unknown>): string {
  const clean = Object.fromEntries(Object.entries(request).filter(([k]) => !/password|idempotency/i.test(k)));
  return createHash('sha256')
    .update(JSON.stringify(clean, Object.keys(clean).sort()))
    .digest('hex');
}

/**
 * Whether a request (its hash) carrying `key` is answered with the answer `seen` stored for the key:
 * true within the window; false when there is none or it expired (the request runs). The same key
 * with another request within the window is refused (IDEMPOTENCY_KEY_REUSED).
 */
export function answersAgain(seen: IdempotencyRecord | undefined, hash: string, now: number, where: { scope: string; key: string }): seen is IdempotencyRecord {
  if (!seen || now - seen.createdAt >= IDEMPOTENCY_WINDOW_MS) return false;
  if (seen.requestHash !== hash) {
    throw new PreconditionError('IDEMPOTENCY_KEY_REUSED', `idempotency key "${where.key}" was used for a different ${where.scope} request; use a new key`);
  }
  return true;
}

/**
 * Runs `create` unless `key` was seen for `scope`; returns the stored or new answer and whether
 * it was replayed. Call inside a store transaction.
 */
export async function idempotent<T>(
  tx: StoreTx,
  scope: string,
  key: string,
  request: Record<string, unknown>,
  now: number,
  create: () => Promise<T>,
): Promise<{ result: T; replayed: boolean }> {
  if (!key) return { result: await create(), replayed: false };
  const hash = requestHash(request);
  const seen = await tx.idempotency.get(scope, key);
  if (answersAgain(seen, hash, now, { scope, key })) return { result: JSON.parse(seen.response) as T, replayed: true };
  const result = await create();
  await tx.idempotency.put(scope, key, { requestHash: hash, response: JSON.stringify(result), createdAt: now });
  return { result, replayed: false };
}

/** Generated passwords kept in memory for retries of the request that made them. */
export class PasswordRetryCache {
  private readonly entries = new Map<string, { password: string; expiresAt: number }>();

  /** Remembers the password generated for a key. */
  put(key: string, password: string, now: number): void {
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    this.entries.set(key, { password, expiresAt: now + PASSWORD_RETRY_WINDOW_MS });
  }

  /** The password generated for a key, while the window lasts. */
  get(key: string, now: number): string | undefined {
    const e = this.entries.get(key);
    return e && e.expiresAt > now ? e.password : undefined;
  }
}
