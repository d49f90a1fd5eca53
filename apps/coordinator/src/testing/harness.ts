/**
 * Starts a coordinator in-process for integration tests: temp data dir, free ports, fast loops.
 * It runs --insecure (plaintext, components name themselves) so fake agents need no certificates;
 * the operator client still authenticates with the bootstrap fleet-admin token. The security tests
 * use secure-harness.ts (mTLS) instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { CoordinatorService, RouteFeedService } from '@pgs/proto';
import { createClient, type Client } from '@pgs/rpc';
import { bearerMetadata, identity, identityClaimMetadata } from '@pgs/security';
import { pino } from 'pino';
import { readConfig, type CoordinatorConfig } from '../config.js';
import { startCoordinator, type RunningCoordinator } from '../coordinator.js';
import { withCallMetadata } from './call-metadata.js';

/** A coordinator with clients. */
export interface Harness {
  coordinator: RunningCoordinator;
  operator: Client<typeof CoordinatorService>;
  routes: Client<typeof RouteFeedService>;
  dataDir: string;
  config: CoordinatorConfig;
  /** The bootstrap fleet-admin token the operator client uses. */
  adminToken: string;
  stop(): Promise<void>;
}

/** Fast liveness so tests run in seconds; flags override. */
export const FAST_FLAGS = [
  '--host-ttl',
  '300ms',
  '--host-down-grace',
  '300ms',
  '--heartbeat-interval',
  '100ms',
  '--reconcile-interval',
  '30ms',
  '--retry-base',
  '100ms',
  '--agent-lease',
  '1000ms',
];

/** Starts a coordinator on `dataDir` (a new temp dir by default). */
export async function startHarness(extraFlags: string[] = [], dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-coord-it-'))): Promise<Harness> {
  const result = readConfig(
    ['--insecure', '--data-dir', dataDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...FAST_FLAGS, ...extraFlags],
    {},
  );
  if (result.kind !== 'config') throw new Error('unexpected help');
  const log = pino({ level: process.env.PGS_TEST_LOG ?? 'silent' });
  const coordinator = await startCoordinator(result.config, log);
  const adminToken = fs.readFileSync(coordinator.adminTokenFile, 'utf8').trim();
  const operator = createClient(CoordinatorService, coordinator.grpcAddress, credentials.createInsecure(), withCallMetadata(bearerMetadata(adminToken)));
  const routes = createClient(
    RouteFeedService,
    coordinator.grpcAddress,
    credentials.createInsecure(),
    withCallMetadata(identityClaimMetadata(identity('router', 'r1'))),
  );
  return {
    coordinator,
    operator,
    routes,
    dataDir,
    config: result.config,
    adminToken,
    stop: async () => {
      operator.close();
      routes.close();
      await coordinator.stop();
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
