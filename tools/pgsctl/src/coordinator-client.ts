/**
 * Connects to the coordinator's CoordinatorService: TLS against the fleet CA with the operator's
 * bearer token (coordinator-auth.ts), or --insecure. Its own module because it loads gRPC and the
 * generated descriptors, which commands that never call the coordinator (version, completion,
 * help) should not pay for at start-up.
 */
import { CoordinatorService } from '@pgs/proto';
import { createLeaderClient, splitAddresses } from '@pgs/rpc';
import { resolveCoordinatorAuth, type AuthFlags } from './coordinator-auth.js';
import type { CoordinatorClient } from './context.js';
import type { SettingsEnv } from './settings.js';

// grpc-js backs off reconnecting up to 2 minutes by default; a --wait that outlives a coordinator
// restart would then stay blind long after the coordinator is back. A CLI reconnects briskly.
const RECONNECT = { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2000 };

/** A client of the coordinator at `address` (or of the leader among several, comma-separated), authenticated as `flags` and `env` say. */
export function connectCoordinator(address: string, flags: AuthFlags, env: SettingsEnv): CoordinatorClient {
  const auth = resolveCoordinatorAuth(flags, env);
  return createLeaderClient(CoordinatorService, splitAddresses(address), auth.credentials, { ...RECONNECT, ...auth.channelOptions });
}
