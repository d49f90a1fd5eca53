import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

/** gRPC status codes, re-exported so callers need not import grpc-js for them. */
export { status as Code } from '@grpc/grpc-js';

// Trailing-metadata keys that carry machine-readable error details across the wire.
const DETAIL_PREFIX = 'pgs-detail-';
const ERROR_CODE_KEY = 'pgs-error-code';

/**
 * An error with a gRPC status code, a stable application error code (e.g. `TENANT_NOT_FOUND`)
 * and string details (e.g. `field`), which survive the trip from server to client.
 */
export class RpcError extends Error {
  readonly code: status;
  readonly errorCode: string;
  readonly details: Readonly<Record<string, string>>;

  constructor(code: status, message: string, options: { errorCode?: string; details?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'RpcError';
    this.code = code;
    this.errorCode = options.errorCode ?? status[code] ?? 'UNKNOWN';
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** The status name, e.g. `NOT_FOUND`. */
  get codeName(): string {
    return status[this.code] ?? `CODE_${this.code}`;
  }

  /** Trailing metadata that carries errorCode and details to the client. */
  toMetadata(): Metadata {
    const md = new Metadata();
    md.set(ERROR_CODE_KEY, this.errorCode);
    for (const [key, value] of Object.entries(this.details)) md.set(DETAIL_PREFIX + key.toLowerCase(), value);
    return md;
  }

  /** Rebuilds an RpcError from what grpc-js hands a client. */
  static fromServiceError(err: ServiceError): RpcError {
    const details: Record<string, string> = {};
    let errorCode: string | undefined;
    const map = err.metadata?.getMap() ?? {};
    for (const [key, value] of Object.entries(map)) {
      const text = typeof value === 'string' ? value : value.toString('utf8');
      if (key === ERROR_CODE_KEY) errorCode = text;
      else if (key.startsWith(DETAIL_PREFIX)) details[key.slice(DETAIL_PREFIX.length)] = text;
    }
    return new RpcError(err.code, err.details || err.message, { errorCode, details, cause: err });
  }
}

/** True for a grpc-js ServiceError (an Error with a numeric code and metadata). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}
