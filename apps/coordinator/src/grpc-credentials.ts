/**
 * The one place the coordinator builds gRPC transport credentials. Plaintext for now; the
 * security issue adds mTLS here and nowhere else.
 */
import { ServerCredentials } from '@grpc/grpc-js';

/** Credentials of the coordinator's gRPC server. */
export function serverCredentials(): ServerCredentials {
  return ServerCredentials.createInsecure();
}
