/**
 * Coordinator failover, whole processes: three built coordinators on one PostgreSQL store (real
 * server, fsync on), an operator client given all three addresses. 10 runs of: kill -9 the leader,
 * then create a tenant every 20 ms through the client until one is acknowledged; the time from the
 * kill to that acknowledgement is the sample (lease expiry, a follower's take-over, the new leader
 * starting from the store, the client finding it). The killed coordinator is started again as a
 * follower before the next run, so every run has three.
 *
 *   npm run bench:coordinator-failover -w bench     (goal: p50 and max under 5 s)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { startTestPostgres } from '@pgs/pg-testkit';
import { CoordinatorService } from '@pgs/proto';
import { createLeaderClient } from '@pgs/rpc';
import { BENCH_NET, freePort } from './fleet-launcher.js';

const RUNS = 10;
const BLOCK = 37;
const HOST = `127.${BENCH_NET}.${BLOCK}.1`;
const PW = 'bench-failover-secret-1';
const REPO = path.resolve(import.meta.dirname, '..', '..');
const COORDINATOR = path.join(REPO, 'apps', 'coordinator', 'dist', 'main.js');

interface Coordinator {
  grpc: string;
  http: string;
  dataDir: string;
  log: string;
  child?: ChildProcess;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-bench-coord-failover-'));
const server = await startTestPostgres({ host: `127.${BENCH_NET}.${BLOCK}.32`, users: [{ name: 'pgs', password: PW }], settings: { fsync: 'on' } });
const env = { ...process.env, PGS_STORE: server.url('pgs', PW), PGS_SECRET_KEY: randomBytes(32).toString('base64'), PGS_INSECURE: 'true' };
const adminTokenFile = path.join(root, 'admin.token');
const coordinators: Coordinator[] = [];
for (let i = 0; i < 3; i++) {
  coordinators.push({
    grpc: `${HOST}:${await freePort(HOST)}`,
    http: `${HOST}:${await freePort(HOST)}`,
    dataDir: path.join(root, `c${i}`),
    log: path.join(root, `c${i}.log`),
  });
}

function start(c: Coordinator): void {
  const out = fs.openSync(c.log, 'a');
  c.child = spawn(
    process.execPath,
    [COORDINATOR, '--grpc-listen', c.grpc, '--http-listen', c.http, '--data-dir', c.dataDir, '--admin-token-file', adminTokenFile, '--log-level', 'warn'],
    { env, stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
}

async function kill(c: Coordinator): Promise<void> {
  const child = c.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function role(c: Coordinator): Promise<string | undefined> {
  try {
    const r = await fetch(`http://${c.http}/healthz`, { signal: AbortSignal.timeout(1000) });
    return ((await r.json()) as { role?: string }).role;
  } catch {
    return undefined;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const leader = (): Promise<Coordinator | undefined> =>
  until(
    'a leader',
    async () => {
      for (const c of coordinators) if ((await role(c)) === 'leader') return c;
      return undefined;
    },
    30_000,
  );

const samples: number[] = [];
try {
  for (const c of coordinators) start(c);
  await leader();
  await until('the admin token', async () => (fs.existsSync(adminTokenFile) ? true : undefined), 30_000);
  const token = fs.readFileSync(adminTokenFile, 'utf8').trim();
  const client = createLeaderClient(
    CoordinatorService,
    coordinators.map((c) => c.grpc),
    credentials.createInsecure(),
    {},
    { rounds: 1 },
  );
  const meta = { metadata: { authorization: `Bearer ${token}` }, timeoutMs: 2000 };
  await client.createTenant({ id: 'warm-up' }, meta);
  for (let run = 1; run <= RUNS; run++) {
    // Every coordinator up and settled (the killed one back as a follower) before the next kill.
    await until('all three answering', async () => ((await Promise.all(coordinators.map(role))).every((r) => r !== undefined) ? true : undefined), 30_000);
    const current = (await leader()) as Coordinator;
    await kill(current);
    const killedAt = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await client.createTenant({ id: `run${run}-${attempt}` }, meta);
        break;
      } catch {
        if (performance.now() - killedAt > 60_000) throw new Error(`run ${run}: no write acknowledged within 60 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const ms = performance.now() - killedAt;
    samples.push(ms);
    console.log(`run ${run}: leader killed -> first acknowledged write ${ms.toFixed(0)} ms`);
    start(current);
  }
  client.close();
  const sorted = [...samples].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  console.log(`coordinator failover, ${RUNS} runs (3 coordinators, PostgreSQL store, default lease 2 s / renew 500 ms):`);
  console.log(`  leader kill -9 -> first successful write: p50 ${p50.toFixed(0)} ms, max ${(sorted.at(-1) ?? 0).toFixed(0)} ms (goal < 5000 ms)`);
} catch (err) {
  for (const c of coordinators)
    console.error(`----- ${c.log}\n${fs.existsSync(c.log) ? fs.readFileSync(c.log, 'utf8').split('\n').slice(-20).join('\n') : ''}`);
  throw err;
} finally {
  await Promise.all(coordinators.map(kill));
  await server.stop();
  fs.rmSync(root, { recursive: true, force: true });
}
