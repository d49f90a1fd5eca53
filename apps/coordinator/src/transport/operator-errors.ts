/**
 * The one mapper from domain errors to gRPC status codes (and HTTP statuses for REST):
 * ValidationError -> INVALID_ARGUMENT with the field, StaleRevisionError -> ABORTED, not found,
 * already exists, failed precondition; a store that cannot write -> UNAVAILABLE.
 */
import { Code, RpcError } from '@pgs/rpc';
import { PgsError, StaleRevisionError, TransitionError, ValidationError } from '@pgs/tenancy';
import { AlreadyExistsError, NotFoundError, NotImplementedError, PreconditionError, StoreConflictError, StoreUnavailableError } from '../domain/errors.js';

const HTTP: Partial<Record<number, number>> = {
  [Code.INVALID_ARGUMENT]: 400,
  [Code.UNAUTHENTICATED]: 401,
  [Code.PERMISSION_DENIED]: 403,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.FAILED_PRECONDITION]: 409,
  [Code.ABORTED]: 409,
  [Code.UNAVAILABLE]: 503,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
};

/** The HTTP status of a gRPC code. */
export function httpStatusOf(code: number): number {
  return HTTP[code] ?? 500;
}

/** Maps a thrown error to an RpcError; undefined = internal error (logged, never shown). */
export function toRpcError(err: unknown): RpcError | undefined {
  if (err instanceof RpcError) return err;
  if (err instanceof ValidationError)
    return new RpcError(Code.INVALID_ARGUMENT, err.message, { errorCode: err.code, details: { field: err.field, allowed: err.allowed }, cause: err });
  if (err instanceof StaleRevisionError) {
    return new RpcError(Code.ABORTED, err.message, {
      errorCode: err.code,
      details: { current_revision: String(err.current), given_revision: String(err.given) },
      cause: err,
    });
  }
  if (err instanceof NotFoundError) return new RpcError(Code.NOT_FOUND, err.message, { errorCode: err.code, cause: err });
  if (err instanceof AlreadyExistsError) return new RpcError(Code.ALREADY_EXISTS, err.message, { errorCode: err.code, cause: err });
  if (err instanceof PreconditionError || err instanceof TransitionError)
    return new RpcError(Code.FAILED_PRECONDITION, err.message, { errorCode: err.code, cause: err });
  if (err instanceof NotImplementedError) return new RpcError(Code.UNIMPLEMENTED, err.message, { errorCode: err.code, cause: err });
  if (err instanceof PgsError && err.kind === 'user') return new RpcError(Code.INVALID_ARGUMENT, err.message, { errorCode: err.code, cause: err });
  if (err instanceof StoreUnavailableError)
    return new RpcError(Code.UNAVAILABLE, 'the store cannot be written right now; retry', { errorCode: err.code, cause: err });
  // A write that clashed with a concurrent one: the same request may succeed once retried.
  if (err instanceof StoreConflictError)
    return new RpcError(Code.ABORTED, 'the change clashed with another one; read again and retry', { errorCode: err.code, cause: err });
  return undefined;
}
