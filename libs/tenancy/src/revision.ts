/**
 * Optimistic concurrency: every write names the revision it read; a stale one is
 * refused, so two operators editing the same tenant can never silently overwrite each other.
 */
import { StaleRevisionError, ValidationError } from './errors.js';

/** Options of checkRevision. */
export interface CheckRevisionOptions {
  /**
   * Treat a given revision of 0 as "don't care" (an unconditional write). Off by default: only
   * callers with an explicit force semantics (an operator's `--force`) turn it on.
   */
  allowUnconditional?: boolean;
}

/** Throws StaleRevisionError when `given` is not `current` (given 0 passes only with allowUnconditional). */
export function checkRevision(current: number, given: number, options: CheckRevisionOptions = {}): void {
  if (!Number.isSafeInteger(given) || given < 0) {
    throw new ValidationError('revision', given, 'the revision you read: a whole number, 1 or more (0 = unconditional where allowed)');
  }
  if (given === 0 && options.allowUnconditional === true) return;
  if (given !== current) throw new StaleRevisionError(current, given);
}

/** The revision a successful write stores: one more than the one it replaced. */
export function nextRevision(current: number): number {
  return current + 1;
}
