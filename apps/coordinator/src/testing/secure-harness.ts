/**
 * A coordinator with security on, as in production: mTLS from its fleet CA, the bootstrap
 * fleet-admin token, every log line kept in memory so tests can scan it for leaked secrets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { CoordinatorService } from '@pgs/proto';
import { createClient, type Client } from '@pgs/rpc';
import { identity, mtlsChannelCredentials, tlsChannelCredentials, withBearerToken, type IdentityKind } from '@pgs/security';
import { pino } from 'pino';
import { readConfig } from '../config.js';
import { startCoordinator, type RunningCoordinator } from '../coordinator.js';
import { FAST_FLAGS } from './harness.js';

/** A secure coordinator and what tests need to talk to it. */
export interface SecureHarness {
  coordinator: RunningCoordinator;
  dataDir: string;
  caPem: string;
  adminToken: string;
  /** Everything the coordinator logged so far. */
  logs(): string;
  /** A CoordinatorService client over TLS with a bearer token (none = no token at all). */
  operator(token?: string): Client<typeof CoordinatorService>;
  /** mTLS credentials with a certificate from the fleet CA (lifetimeMs/now to make expired ones). */
  componentCredentials(kind: IdentityKind, id: string, options?: { lifetimeMs?: number; now?: Date }): Promise<ChannelCredentials>;
  stop(): Promise<void>;
}

/** Starts a coordinator with mTLS and tokens on (a new temp data dir by default). */
export async function startSecureHarness(
  extraFlags: string[] = [],
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-coord-sec-')),
  env: Record<string, string> = {},
): Promise<SecureHarness> {
  const result = readConfig(['--data-dir', dataDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...FAST_FLAGS, ...extraFlags], {});
  if (result.kind !== 'config') throw new Error('unexpected help');
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.toString('utf8');
      done();
    },
  });
  // Info level: the lines a production coordinator writes, which must hold no secret.
  const log = pino({ level: 'info' }, sink);
  const coordinator = await startCoordinator(result.config, log, Date.now, env);
  const caPem = fs.readFileSync(path.join(dataDir, 'ca.pem'), 'utf8');
  const adminToken = fs.readFileSync(coordinator.adminTokenFile, 'utf8').trim();
  const clients: { close(): void }[] = [];
  return {
    coordinator,
    dataDir,
    caPem,
    adminToken,
    logs: () => logged,
    operator: (token) => {
      const tls = tlsChannelCredentials(caPem);
      const client = createClient(CoordinatorService, coordinator.grpcAddress, token === undefined ? tls : withBearerToken(tls, token));
      clients.push(client);
      return client;
    },
    componentCredentials: async (kind, id, options = {}) => {
      const ca = coordinator.pki?.ca;
      if (!ca) throw new Error('the secure harness has no fleet CA');
      const leaf = await ca.issue({ identity: identity(kind, id), now: options.now ?? new Date(), lifetimeMs: options.lifetimeMs });
      return mtlsChannelCredentials({ caPem, certPem: leaf.certPem, keyPem: leaf.keyPem });
    },
    stop: async () => {
      for (const c of clients) c.close();
      await coordinator.stop();
    },
  };
}
