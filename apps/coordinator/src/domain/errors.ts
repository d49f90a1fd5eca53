/**
 * The coordinator's own errors, on the PgsError base from @pgs/tenancy. Each class stands for one
 * gRPC status (and one HTTP status); operator-errors.ts is the one mapper.
 */
import { PgsError } from '@pgs/tenancy';

/** The named thing does not exist (NOT_FOUND / 404). */
export class NotFoundError extends PgsError {
  constructor(code: string, message: string) {
    super(code, message, { kind: 'user' });
  }
}

/** The thing to create exists already (ALREADY_EXISTS / 409). */
export class AlreadyExistsError extends PgsError {
  constructor(code: string, message: string) {
    super(code, message, { kind: 'user' });
  }
}

/** The request is well-formed but the fleet is not in a state that allows it (FAILED_PRECONDITION / 409). */
export class PreconditionError extends PgsError {
  constructor(code: string, message: string) {
    super(code, message, { kind: 'user' });
  }
}

/** The operation exists in the contract but belongs to a later issue (UNIMPLEMENTED / 501). */
export class NotImplementedError extends PgsError {
  constructor(code: string, message: string) {
    super(code, message, { kind: 'user' });
  }
}

/** Helpers for the usual not-found errors. */
export const notFound = {
  tenant: (id: string) => new NotFoundError('TENANT_NOT_FOUND', `tenant "${id}" does not exist`),
  user: (tenantId: string, name: string) => new NotFoundError('USER_NOT_FOUND', `user "${name}" does not exist in tenant "${tenantId}"`),
  database: (tenantId: string, name: string) => new NotFoundError('DATABASE_NOT_FOUND', `database "${name}" does not exist in tenant "${tenantId}"`),
  host: (id: string) => new NotFoundError('HOST_NOT_FOUND', `host "${id}" does not exist`),
  version: (id: string) => new NotFoundError('VERSION_NOT_FOUND', `PostgreSQL version "${id}" is not in the catalog`),
};

/**
 * The store refused a write that clashes with stored data (a unique key, a second primary, a
 * second running backup) or with a concurrent transaction. Retrying the same write fails again
 * unless the state changed; callers turn it into their own conflict error when it can happen.
 */
export class StoreConflictError extends PgsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('STORE_CONFLICT', message, { kind: 'service', ...options });
  }
}

/** A row the write needs does not exist (a host to bump, a tenant to update). */
export class StoreNotFoundError extends PgsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('STORE_NOT_FOUND', message, { kind: 'service', ...options });
  }
}

/** The store cannot read or write right now (disk full, I/O error, busy, connection lost); retry later. */
export class StoreUnavailableError extends PgsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('STORE_UNAVAILABLE', message, { kind: 'service', ...options });
  }
}
