/**
 * The security lib's one error class, on the PgsError base from @pgs/tenancy. The `code` says what
 * went wrong in a stable, machine-readable way; messages never contain key material or tokens.
 */
import { PgsError } from '@pgs/tenancy';

/** Stable codes of SecurityError. */
export type SecurityErrorCode =
  /** No usable key: missing env/key file, bad base64, wrong length, bad key id. */
  | 'SECRET_KEY_INVALID'
  /** A key file is readable by group or others. */
  | 'SECRET_KEY_FILE_MODE'
  /** A sealed value names a key id the ring does not hold (rotated away too early?). */
  | 'SECRET_KEY_UNKNOWN'
  /** Not a `v1.<kid>.<iv>.<ct>` string. */
  | 'SECRET_MALFORMED'
  /** Authentication failed: wrong key, wrong context (aad) or tampered data. */
  | 'SECRET_DECRYPT_FAILED'
  /** A certificate, key or CSR could not be read or does not fit its use. */
  | 'CERTIFICATE_INVALID'
  /** A component identity (host:<id>, router:<id>, ...) is malformed. */
  | 'IDENTITY_INVALID'
  /** A token is malformed, unknown, expired, used or revoked. */
  | 'TOKEN_INVALID'
  /** TLS files could not be read. */
  | 'TLS_MATERIAL_INVALID'
  /** A SCRAM server broke the exchange, or proved it holds another verifier. */
  | 'SCRAM_EXCHANGE_FAILED';

/** Any failure of the security building blocks; `code` says which. */
export class SecurityError extends PgsError {
  declare readonly code: SecurityErrorCode;

  constructor(code: SecurityErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { kind: 'service', ...options });
  }
}
