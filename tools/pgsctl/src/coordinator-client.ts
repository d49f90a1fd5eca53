/**
 * Connects to the coordinator's CoordinatorService: TLS against the fleet CA with the operator's
 * bearer token (coordinator-auth.ts), or --insecure. Its own module because it loads gRPC and the
 * generated descriptors, which commands that never call the coordinator (version, completion,
 * help) should not pay for at start-up.
 */
import { CoordinatorService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { resolveCoordinatorAuth, type AuthFlags } from './coordinator-auth.js';
import type { CoordinatorClient } from './context.js';
import type { SettingsEnv } from './settings.js';

/** A client of the coordinator at `address`, authenticated as `flags` and `env` say. */
export function connectCoordinator(address: string, flags: AuthFlags, env: SettingsEnv): CoordinatorClient {
  const auth = resolveCoordinatorAuth(flags, env);
  return createClient(CoordinatorService, address, auth.credentials, auth.channelOptions);
}
