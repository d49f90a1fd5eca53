// The one place the router builds gRPC credentials: plaintext for now; mTLS later changes only this file.
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';

/** Credentials for the router's link to the coordinator. */
export function coordinatorCredentials(): ChannelCredentials {
  return credentials.createInsecure();
}
