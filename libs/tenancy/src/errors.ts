/**
 * The one error family every pgs app throws: a stable `code` that callers
 * branch on, a `kind` that picks the log level and metric label, and the `cause` chain.
 */
import type { TenantStatus } from './statuses.js';

/** What an error means for logging and metrics: whose fault it is. */
export type ErrorKind = 'user' | 'client_disconnect' | 'rate_limit' | 'service' | 'upstream';

/** Base error: stable `code`, `kind` (default 'service') and optional `cause`. */
export class PgsError extends Error {
  /** Stable machine-readable code, e.g. 'TENANT_NOT_FOUND'. */
  readonly code: string;
  /** Whose fault it is; picks the log level and the metric label. */
  readonly kind: ErrorKind;

  constructor(code: string, message: string, options: { kind?: ErrorKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = options.kind ?? 'service';
  }
}

/** Renders a given value for a message: short, and never a multi-line dump. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch (err) {
    // Cycles or BigInts: fall back to the type, the message stays useful without the value.
    return `<${typeof value}: ${err instanceof Error ? err.message : 'unprintable'}>`;
  }
}

/** A value outside the rules: says which field, what was given and what is allowed. */
export class ValidationError extends PgsError {
  /** The field path as the API spells it, e.g. 'spec.resources.memory_mib'. */
  readonly field: string;
  /** The value that was refused (passwords are replaced by a description of their length). */
  readonly given: unknown;
  /** A human description of what is allowed. */
  readonly allowed: string;

  constructor(field: string, given: unknown, allowed: string, options: { code?: string; cause?: unknown } = {}) {
    super(options.code ?? 'INVALID_ARGUMENT', `invalid ${field}: got ${show(given)}; allowed: ${allowed}`, {
      kind: 'user',
      cause: options.cause,
    });
    this.field = field;
    this.given = given;
    this.allowed = allowed;
  }
}

/** A write named a revision that is no longer current (optimistic concurrency). */
export class StaleRevisionError extends PgsError {
  /** The revision stored now. */
  readonly current: number;
  /** The revision the writer read. */
  readonly given: number;

  constructor(current: number, given: number) {
    super('STALE_REVISION', `stale revision: the write is based on revision ${given} but the current revision is ${current}; read again and retry`, {
      kind: 'user',
    });
    this.current = current;
    this.given = given;
  }
}

/** A status change that the tenant status machine does not allow. */
export class TransitionError extends PgsError {
  /** The status the tenant is in. */
  readonly from: TenantStatus;
  /** The status that was asked for. */
  readonly to: TenantStatus;

  constructor(from: TenantStatus, to: TenantStatus, allowed: readonly TenantStatus[]) {
    const next = allowed.length === 0 ? 'none (terminal)' : allowed.join(', ');
    super('INVALID_TRANSITION', `a tenant cannot go from ${from} to ${to}; from ${from} it can go to: ${next}`, { kind: 'user' });
    this.from = from;
    this.to = to;
  }
}
