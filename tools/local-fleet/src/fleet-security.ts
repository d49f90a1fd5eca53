/**
 * Security of the local fleet, on by default: the launcher makes the coordinator's
 * secret key file (0600, outside the coordinator's data dir), reads the CA and the bootstrap
 * fleet-admin token the coordinator writes at its first start, and gives every agent and router a
 * fresh single-use join token (by environment, never argv); each keeps the certificate it gets in its
 * own state dir (agents: <data-root>/identity, routers: identity-<id> beside their route cache).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CoordinatorService } from '@pgs/proto';
import type { Client } from '@pgs/rpc';
import { ensureKeyFile, tlsChannelCredentials, withBearerToken } from '@pgs/security';
import { credentials, InterceptingCall, type ChannelCredentials, type ChannelOptions, type Interceptor } from '@grpc/grpc-js';
import type { FleetLayout } from './layout.js';

/** Files of the fleet's security. */
export interface FleetSecurityFiles {
  /** The coordinator's key for secrets at rest. */
  secretKeyFile: string;
  /** Written by the coordinator: its fleet CA and the bootstrap fleet-admin token. */
  caFile: string;
  tokenFile: string;
}

/** Where the security files of a fleet live. */
export function securityFiles(layout: FleetLayout): FleetSecurityFiles {
  return {
    secretKeyFile: path.join(layout.certsDir, 'coordinator-secret.key'),
    caFile: path.join(layout.coordinatorData, 'ca.pem'),
    tokenFile: path.join(layout.coordinatorData, 'admin.token'),
  };
}

/** Creates the coordinator's secret key file when missing; true when it did. */
export function ensureSecretKey(files: FleetSecurityFiles): boolean {
  return ensureKeyFile(files.secretKeyFile).created;
}

/** Channel credentials (and options) for the launcher's own CoordinatorService client, as the fleet-admin. */
export function launcherCredentials(files: FleetSecurityFiles, insecure: boolean): { credentials: ChannelCredentials; channelOptions: ChannelOptions } {
  const token = fs.readFileSync(files.tokenFile, 'utf8').trim();
  if (!insecure) return { credentials: withBearerToken(tlsChannelCredentials(fs.readFileSync(files.caFile, 'utf8')), token), channelOptions: {} };
  // grpc-js refuses call credentials on plaintext: an interceptor adds the token to every call.
  const interceptor: Interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return { credentials: credentials.createInsecure(), channelOptions: { interceptors: [interceptor] } as ChannelOptions };
}

/** A single-use join token for one agent or router (valid 30 minutes, enough for a slow first start). */
export async function joinToken(client: Client<typeof CoordinatorService>, kind: 'host' | 'router', id: string): Promise<string> {
  const res = await client.createJoinToken({ kind, componentId: id, ttlSeconds: 1800 }, { timeoutMs: 10_000 });
  return res.token;
}
