/**
 * The agent's errors: PgsError with a stable code, so a failed realization or command reaches the
 * coordinator as a code it can branch on (CommandResult.error_code) and a message a person can act on.
 */
import { PgsError, type ErrorKind } from '@pgs/tenancy';

/** Stable codes of the agent's errors. */
export type AgentErrorCode =
  | 'INSTANCE_NOT_FOUND'
  | 'INSTANCE_NOT_RUNNING'
  | 'INVALID_VERIFIER'
  | 'INVALID_IDENTIFIER'
  | 'NO_FREE_PORT'
  | 'PORT_IN_USE'
  | 'VERSION_NOT_INSTALLED'
  | 'START_FAILED'
  | 'STOP_FAILED'
  | 'INITDB_FAILED'
  | 'RUNTIME_ERROR'
  | 'NOT_SUPPORTED'
  | 'ADMIN_FAILED'
  | 'UNKNOWN_COMMAND'
  | 'PRIMARY_NOT_READY'
  | 'REWIND_FAILED'
  | 'PROMOTE_FAILED'
  | 'NOT_CAUGHT_UP'
  | 'NOT_PRIMARY'
  | 'BACKUP_NOT_CONFIGURED'
  | 'BACKUP_RUNNING'
  | 'BACKUP_FAILED'
  | 'BACKUP_KEY'
  | 'BACKUP_NOT_FOUND'
  | 'EXPIRE_FAILED'
  | 'RESTORE_FAILED'
  | 'RESTORE_REFUSED'
  | 'RESTORE_TARGET_NOT_REACHED'
  | 'NO_BACKUP_BEFORE_TARGET'
  | 'INIT_SQL_FAILED'
  | 'UPGRADE_FAILED'
  | 'LOOK_TIMEOUT';

/** An error of the host agent: a code from AgentErrorCode, a message and the cause. */
export class AgentError extends PgsError {
  constructor(code: AgentErrorCode, message: string, options: { kind?: ErrorKind; cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** A restore that failed, with what was known of the source's archive when it began. */
export class RestoreError extends AgentError {
  constructor(
    code: AgentErrorCode,
    message: string,
    readonly archiveMaxWal: string,
    options: { kind?: ErrorKind; cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

/** The message of any thrown value, for reasons and logs. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The stable code of any thrown value ('RUNTIME_ERROR' when it has none). */
export function codeOf(err: unknown): string {
  return err instanceof PgsError ? err.code : 'RUNTIME_ERROR';
}
