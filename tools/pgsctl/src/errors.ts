/**
 * pgsctl's error classes and exit codes. Every failure a user can meet ends as a CliError with a
 * message that says what went wrong and a hint that says what to do; the exit code tells scripts
 * which class it was without parsing text. The mapping of gRPC and domain errors lives in
 * error-mapping.ts, so a command that never calls the coordinator does not load gRPC.
 */

/** Exit codes per error class (documented in `pgsctl --help`). */
export const ExitCode = Object.freeze({
  OK: 0,
  /** Anything unexpected: a bug, an internal server error. */
  UNEXPECTED: 1,
  /** Bad flags or arguments, or a value the rules refuse (INVALID_ARGUMENT). */
  USAGE: 2,
  /** The tenant, host, user or database does not exist. */
  NOT_FOUND: 3,
  /** Already exists, stale revision, or not allowed in the current state. */
  CONFLICT: 4,
  /** The coordinator cannot be reached or cannot serve right now (or does not serve the call at all: UNIMPLEMENTED). */
  UNAVAILABLE: 5,
  /** `--wait` gave up before the tenant reached the state it waited for. */
  TIMEOUT: 6,
  /** No valid operator token, or its role may not do this (UNAUTHENTICATED, PERMISSION_DENIED). */
  DENIED: 7,
  /** The backup or restore that `--wait` followed ended FAILED. */
  FAILED: 8,
});

/** One of the ExitCode values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure to report to the user: message (what went wrong), hint (what to do), exit code (which class). */
export class CliError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;

  constructor(exitCode: ExitCodeValue, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = options.hint;
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends CliError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(ExitCode.USAGE, message, options);
    this.name = 'UsageError';
  }
}

/** `--wait` ran out of time: exit 6. */
export class WaitTimeoutError extends CliError {
  constructor(message: string, hint: string) {
    super(ExitCode.TIMEOUT, message, { hint });
    this.name = 'WaitTimeoutError';
  }
}

/** A backup or restore that `--wait` followed ended FAILED: exit 8, with its reason. */
export class OperationFailedError extends CliError {
  constructor(message: string, hint: string) {
    super(ExitCode.FAILED, message, { hint });
    this.name = 'OperationFailedError';
  }
}

/** Not an error but an answer in the exit code (`pgsctl diff`: 1 when something would change); nothing is printed. */
export class QuietExit extends CliError {
  constructor(exitCode: ExitCodeValue, message: string) {
    super(exitCode, message);
    this.name = 'QuietExit';
  }
}
