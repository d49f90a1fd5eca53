// The one place the agent builds its gRPC link to the coordinator: mTLS with its `host:<id>` fleet
// certificate (got once with a join token, kept in the identity dir, renewed at 2/3 of its lifetime;
// @pgs/security's fleet identity does all of it) or plaintext behind --insecure. Keepalive pings,
// so that a coordinator that vanished without closing the TCP connection is noticed in seconds, are
// set on every coordinator channel by @pgs/rpc (COORDINATOR_KEEPALIVE).
import path from 'node:path';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { connectFleetIdentity, type FleetLink } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';
import type { AgentConfig } from './config.js';

/** The agent's fleet link: saved certificate, a new one from the join token, own PKI files, or --insecure; renews until stop(). */
export function connectCoordinatorLink(config: AgentConfig, log: Logger): Promise<FleetLink> {
  return connectFleetIdentity({
    hostId: config.hostId,
    coordinator: config.coordinator,
    insecure: config.insecure,
    joinToken: config.joinToken,
    identityDir: config.identityDir ?? path.join(config.dataRoot, 'identity'),
    files: { caFile: config.coordinatorCa, certFile: config.identityCert, keyFile: config.identityKey },
    log,
  });
}

/**
 * Credentials for the agent's link to the coordinator: the fleet link's. Without a link, plaintext:
 * only for in-process tests against the plaintext fake coordinator (main.ts always passes the link).
 */
export function coordinatorCredentials(link?: FleetLink): ChannelCredentials {
  return link ? link.credentials : credentials.createInsecure();
}
