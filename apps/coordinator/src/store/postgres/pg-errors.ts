/**
 * Driver errors → the store's typed errors, so no caller ever looks at a SQLSTATE. Integrity
 * violations (class 23) and serialization failures are conflicts; lost connections, a server
 * shutting down or still starting, a standby refusing writes (after a promotion elsewhere) and
 * anything unexpected are "unavailable": retry later, against the primary found again.
 */
import { PgsError } from '@pgs/tenancy';
import { StoreConflictError, StoreUnavailableError } from '../../domain/errors.js';

// Serialization failure, deadlock, and "the transaction already failed" (an earlier statement of it
// broke a constraint the caller went on after).
const CONFLICT_STATES = new Set(['40001', '40P01', '25P02']);

/** The SQLSTATE of a driver error, or undefined for a socket-level error. */
function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether the connection that raised `err` is unusable and the primary should be found again. */
export function isConnectionLost(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return true; // ECONNREFUSED, ECONNRESET, "Connection terminated", timeouts
  return state.startsWith('08') || state.startsWith('57P') || state === '25006' || state.startsWith('53');
}

/** Maps any error from a query to the store's typed errors (ours pass through unchanged). */
export function toStoreError(err: unknown, what: string): Error {
  if (err instanceof PgsError) return err;
  const state = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  if (state !== undefined && (state.startsWith('23') || CONFLICT_STATES.has(state))) {
    return new StoreConflictError(`${what}: ${message}`, { cause: err });
  }
  if (state === '25006') return new StoreUnavailableError(`${what}: the store's server is a read-only standby now; finding the primary again`, { cause: err });
  return new StoreUnavailableError(`${what}: ${message}${state ? ` (SQLSTATE ${state})` : ''}`, { cause: err });
}
