// The one place the agent builds gRPC credentials: plaintext for now; mTLS later changes only this file.
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';

/** Credentials for the agent's link to the coordinator. */
export function coordinatorCredentials(): ChannelCredentials {
  return credentials.createInsecure();
}
