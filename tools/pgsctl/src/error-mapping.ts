/**
 * Any error -> CliError with the exit code of its class: gRPC status codes from the coordinator,
 * and the domain's validation errors (usage errors with the very message the coordinator gives).
 */
import { Code, RpcError } from '@pgs/rpc';
import { PgsError, ValidationError } from '@pgs/tenancy';
import { CliError, ExitCode, UsageError, type ExitCodeValue } from './errors.js';

const EXIT_BY_CODE: ReadonlyMap<number, ExitCodeValue> = new Map([
  [Code.INVALID_ARGUMENT, ExitCode.USAGE],
  [Code.OUT_OF_RANGE, ExitCode.USAGE],
  [Code.NOT_FOUND, ExitCode.NOT_FOUND],
  [Code.ALREADY_EXISTS, ExitCode.CONFLICT],
  [Code.ABORTED, ExitCode.CONFLICT],
  [Code.FAILED_PRECONDITION, ExitCode.CONFLICT],
  [Code.RESOURCE_EXHAUSTED, ExitCode.CONFLICT],
  [Code.UNAVAILABLE, ExitCode.UNAVAILABLE],
  [Code.DEADLINE_EXCEEDED, ExitCode.UNAVAILABLE],
  [Code.UNIMPLEMENTED, ExitCode.UNAVAILABLE],
  [Code.UNAUTHENTICATED, ExitCode.DENIED],
  [Code.PERMISSION_DENIED, ExitCode.DENIED],
]);

function hintFor(err: RpcError, coordinator: string): string | undefined {
  switch (err.code) {
    case Code.UNAVAILABLE:
    case Code.DEADLINE_EXCEEDED:
      return (
        `is the coordinator running at ${coordinator}? Start a local fleet with \`npm start\` in the pgs repository, ` +
        'or point pgsctl elsewhere with --coordinator host:port, PGS_COORDINATOR or ~/.config/pgs/config.json'
      );
    case Code.UNIMPLEMENTED:
      return `the coordinator at ${coordinator} is older than this pgsctl: upgrade it to use this command`;
    case Code.ABORTED:
      return 'someone changed it since you read it: read it again (pgsctl tenant get) and retry';
    case Code.NOT_FOUND:
      return 'list what exists with the matching `list` command';
    case Code.UNAUTHENTICATED:
    case Code.PERMISSION_DENIED:
      return "check the operator token pgsctl uses (--token, PGS_TOKEN, --token-file, PGS_TOKEN_FILE, ~/.config/pgs/config.json, or the local fleet's admin token) and its role";
    default:
      return undefined;
  }
}

/** grpc-js transport messages end with an empty "Resolution note:" and nest "Error:" prefixes; keep the cause. */
function tidyTransportMessage(message: string): string {
  return message.replace(/\.?\s*Resolution note:\s*$/s, '').replace(/Last error: Error: /, 'last error: ');
}

/** Turns an RpcError from the coordinator into a CliError with the exit code of its class. */
export function fromRpcError(err: RpcError, coordinator: string): CliError {
  const exitCode = EXIT_BY_CODE.get(err.code) ?? ExitCode.UNEXPECTED;
  const what =
    err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED
      ? `cannot reach the coordinator at ${coordinator}: ${tidyTransportMessage(err.message)}`
      : err.code === Code.UNIMPLEMENTED
        ? `the coordinator at ${coordinator} does not serve this call yet (${err.message})`
        : err.message;
  return new CliError(exitCode, what, { hint: hintFor(err, coordinator), cause: err });
}

/**
 * Any error -> CliError. A ValidationError from @pgs/tenancy is a usage error with the very
 * message the coordinator would give, so bad input is refused before any call.
 */
export function toCliError(err: unknown, coordinator: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof RpcError) return fromRpcError(err, coordinator);
  if (err instanceof ValidationError) return new UsageError(err.message, { cause: err });
  if (err instanceof PgsError && err.kind === 'user') return new UsageError(err.message, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new CliError(ExitCode.UNEXPECTED, `unexpected error: ${message}`, {
    hint: 'this is a bug in pgsctl or the coordinator; please report it with the command you ran',
    cause: err,
  });
}
