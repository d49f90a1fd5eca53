// The one place the agent builds its gRPC link to the coordinator: plaintext for now (mTLS later
// changes only this file), with keepalive pings so a coordinator host that vanished without closing
// the TCP connection is noticed in seconds and the agent reconnects.
import { credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';

/** Credentials for the agent's link to the coordinator. */
export function coordinatorCredentials(): ChannelCredentials {
  return credentials.createInsecure();
}

/** Channel options of that link. */
export function coordinatorChannelOptions(): ChannelOptions {
  return { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1 };
}
