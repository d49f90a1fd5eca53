/**
 * Crash durability: the coordinator runs as a real child process; the test writes in a loop
 * (creates tenants, users and spec updates over gRPC), kills the process with SIGKILL mid-way,
 * restarts it on the same data dir and checks that every acknowledged write is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@pgs/pg-testkit';
import { CoordinatorService } from '@pgs/proto';
import { createClient, type Client } from '@pgs/rpc';
import { tlsChannelCredentials, withBearerToken } from '@pgs/security';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from './testing/harness.js';

const appDir = path.resolve(import.meta.dirname, '..');
const children: ChildProcess[] = [];
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-coord-kill-'));

async function startProcess(
  grpcPort: number,
  httpPort: number,
): Promise<{ child: ChildProcess; client: Client<typeof CoordinatorService>; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--data-dir', dataDir, '--grpc-listen', `127.0.0.1:${grpcPort}`, '--http-listen', `127.0.0.1:${httpPort}`],
    {
      cwd: appDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  await eventually(
    () => out.includes('coordinator listening') || (child.exitCode !== null ? Promise.reject(new Error(out)) : false),
    // tsx compiles the coordinator on start: over 30 s on a loaded two-core machine.
    90_000,
    'coordinator listening',
  );
  // Security on, as in production: TLS with the fleet CA the coordinator wrote, and its bootstrap admin token.
  const ca = fs.readFileSync(path.join(dataDir, 'ca.pem'), 'utf8');
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const client = createClient(CoordinatorService, `127.0.0.1:${grpcPort}`, withBearerToken(tlsChannelCredentials(ca), token));
  return { child, client, output: () => out };
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('coordinator killed with SIGKILL mid-way', () => {
  it('loses no acknowledged write', async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const first = await startProcess(grpcPort, httpPort);
    const acked: { tenants: string[]; users: string[]; revisions: Map<string, bigint> } = { tenants: [], users: [], revisions: new Map() };
    let stop = false;
    // Four writers at once, so the kill also lands on group commits holding several creates.
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const id = `k${w}-${i}`;
        try {
          const res = await first.client.createTenant({ id, ownerPassword: 'durable-pass-1' }, { timeoutMs: 15_000 });
          acked.tenants.push(id);
          acked.revisions.set(id, res.tenant!.revision);
          await first.client.createUser({ tenantId: id, name: 'app', password: 'durable-pass-2' }, { timeoutMs: 15_000 });
          acked.users.push(id);
          const upd = await first.client.updateTenant({ id, revision: res.tenant!.revision, spec: { description: `update ${i}` } }, { timeoutMs: 15_000 });
          acked.revisions.set(id, upd.tenant!.revision);
        } catch {
          // Not acknowledged, so nothing is promised about it: the kill landed mid-call, or (before the
          // kill, on a loaded machine) the call ran out of time; the writer goes on with the next one.
          if (stop) return;
        }
      }
    };
    const writers = Promise.all([0, 1, 2, 3].map(writer));
    await eventually(() => acked.tenants.length >= 25, 60_000, '25 acknowledged tenants');
    first.child.kill('SIGKILL');
    stop = true;
    await writers;
    await eventually(() => first.child.signalCode === 'SIGKILL', 5000, 'process gone');
    first.client.close();

    const second = await startProcess(grpcPort, httpPort);
    try {
      const all = (await second.client.listTenants({ page: { pageSize: 1000 } })).tenants;
      const byId = new Map(all.map((t) => [t.id, t]));
      for (const id of acked.tenants) expect(byId.has(id), `tenant ${id}`).toBe(true);
      for (const id of acked.users) expect((await second.client.getUser({ tenantId: id, name: 'app' })).user?.name).toBe('app');
      for (const [id, revision] of acked.revisions) expect(byId.get(id)!.revision >= revision, `revision of ${id}`).toBe(true);
      const events = await second.client.listEvents({ limit: 1000 });
      expect(events.events.filter((e) => e.action === 'tenant.create').length).toBeGreaterThanOrEqual(acked.tenants.length);
      expect(second.output()).toContain('store opened');
    } finally {
      second.client.close();
      second.child.kill('SIGTERM');
      await eventually(() => second.child.exitCode !== null || second.child.signalCode !== null, 10_000, 'clean stop');
    }
    expect(acked.tenants.length).toBeGreaterThanOrEqual(25);
  }, 240_000);
});
