// The client-facing error: what the router sends a PostgreSQL client when it refuses a connection.
// PostgreSQL docs, "Message Formats" (ErrorResponse) and Appendix A (SQLSTATE codes).
import type { Buffer } from 'node:buffer';
import { encodeFieldsMessage, type ErrorFields, type Severity } from './error-fields.js';
import { SqlState } from './sqlstate.js';

export type { ErrorFields, Severity } from './error-fields.js';

/** Constructor fields of {@link PgError}. */
export interface PgErrorInit {
  code: string;
  message: string;
  severity?: Severity;
  detail?: string;
  hint?: string;
}

/**
 * An error a PostgreSQL client may see: SQLSTATE, severity and a message safe to show.
 * `toErrorResponse()` gives the bytes to write before closing the connection.
 */
export class PgError extends Error {
  /** The SQLSTATE (see `SqlState`). */
  readonly code: string;
  /** The severity; `FATAL` unless given, since the router refuses whole connections. */
  readonly severity: Severity;
  /** Optional secondary message. */
  readonly detail?: string;
  /** Optional suggestion for the user. */
  readonly hint?: string;

  constructor(fields: PgErrorInit, options?: { cause?: unknown }) {
    super(fields.message, options && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = fields.code;
    this.severity = fields.severity ?? 'FATAL';
    if (fields.detail !== undefined) this.detail = fields.detail;
    if (fields.hint !== undefined) this.hint = fields.hint;
  }

  /** The ErrorResponse fields of this error (absent optional fields are omitted). */
  fields(): ErrorFields {
    const f: ErrorFields = { severity: this.severity, code: this.code, message: this.message };
    if (this.detail !== undefined) f.detail = this.detail;
    if (this.hint !== undefined) f.hint = this.hint;
    return f;
  }

  /** This error as an ErrorResponse message, ready to write to the client. */
  toErrorResponse(): Buffer {
    return encodeFieldsMessage(0x45, this.fields());
  }
}

/** Constructor fields of {@link ProtocolError}: the code and severity are fixed. */
export interface ProtocolErrorInit {
  message: string;
  detail?: string;
  hint?: string;
  code?: typeof SqlState.ProtocolViolation;
  severity?: 'FATAL';
}

/** A protocol violation by the peer: always SQLSTATE 08P01, severity FATAL. */
export class ProtocolError extends PgError {
  constructor(init: string | ProtocolErrorInit, options?: { cause?: unknown }) {
    const f = typeof init === 'string' ? { message: init } : init;
    const fields: PgErrorInit = { code: SqlState.ProtocolViolation, severity: 'FATAL', message: f.message };
    if (f.detail !== undefined) fields.detail = f.detail;
    if (f.hint !== undefined) fields.hint = f.hint;
    super(fields, options);
  }
}
