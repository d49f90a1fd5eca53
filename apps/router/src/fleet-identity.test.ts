/**
 * The router's mTLS link to a real coordinator: first start joins with a one-time
 * token and keeps its key (0600) and certificate; a restart needs no token; a used token, a token
 * for another router id and no credentials at all are refused; nothing secret is logged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { identityOfCertificate, scanForLeaks } from '@pgs/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { startSecureCoordinator, type SecureCoordinator } from '@pgs/security/testing';

let coordinator: SecureCoordinator;
const dirs: string[] = [];
const routers: TestRouter[] = [];

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A router with security on. */
async function secureRouter(routerId: string, cachePath: string, extra: string[]): Promise<TestRouter> {
  const r = await startTestRouter({ coordinator: coordinator.grpc, routerId, cachePath, args: extra, secure: true });
  routers.push(r);
  return r;
}

beforeAll(async () => {
  coordinator = await startSecureCoordinator();
}, 90_000);

afterAll(async () => {
  for (const r of routers) await r.stop().catch(() => undefined);
  await coordinator?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('router fleet identity', () => {
  it('joins with a token, keeps its key private, syncs routes over mTLS, and restarts without the token', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-join-'));
    dirs.push(dir);
    const cachePath = path.join(dir, 'routes.db');
    const { token } = await coordinator.admin.createJoinToken({ kind: 'router', componentId: 'edge-1', ttlSeconds: 600 });
    const first = await secureRouter('edge-1', cachePath, ['--join-token', token]);
    await until(() => first.sync.status().connected, 'route feed connected');
    const idDir = path.join(dir, 'identity-edge-1');
    expect(fs.statSync(path.join(idDir, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(identityOfCertificate(fs.readFileSync(path.join(idDir, 'cert.pem'), 'utf8'))).toEqual({ kind: 'router', id: 'edge-1' });
    const listed = await coordinator.admin.listRoutes({});
    expect(listed.routers.map((r) => r.routerId)).toContain('edge-1');
    const logs = JSON.stringify(first.logs);
    expect(scanForLeaks(logs, { knownSecrets: [token] })).toEqual([]);
    await first.stop();
    routers.splice(routers.indexOf(first), 1);

    // A restart uses the saved certificate; the used token is not needed (and would not work).
    const again = await secureRouter('edge-1', cachePath, []);
    await until(() => again.sync.status().connected, 'route feed connected after restart');
    await again.stop();
    routers.splice(routers.indexOf(again), 1);
  }, 60_000);

  it('refuses a used token, a token for another router, and a router with no credentials', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-refused-'));
    dirs.push(dir);
    const { token } = await coordinator.admin.createJoinToken({ kind: 'router', componentId: 'edge-2', ttlSeconds: 600 });
    await expect(secureRouter('edge-3', path.join(dir, 'a.db'), ['--join-token', token])).rejects.toThrow(/wrong-id/);
    await expect(secureRouter('edge-4', path.join(dir, 'b.db'), [])).rejects.toThrow(/join token/);
    const ok = await secureRouter('edge-2', path.join(dir, 'c.db'), ['--join-token', token]);
    await ok.stop();
    routers.splice(routers.indexOf(ok), 1);
    // Another machine (no saved identity) with the same token: single use.
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-reuse-'));
    dirs.push(other);
    await expect(secureRouter('edge-2', path.join(other, 'd.db'), ['--join-token', token])).rejects.toThrow(/used/);
  }, 60_000);
});
