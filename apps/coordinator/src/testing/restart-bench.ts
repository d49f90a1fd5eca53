// What a coordinator start costs over a big store: fills a SQLite store with N tenants on H hosts
// (each tenant ACTIVE with a realized primary, its owner and its route, as a grown fleet leaves
// them), then starts the built coordinator on it, runs times, and reports the time to /healthz and
// to a first API answer with the CPU the process used to get there (from /proc: CPU time is what
// a loaded machine does not distort; wall-clock time is). No agent connects: this is the start
// itself, before the fleet's reconnects.
//
//   npm run bench:restart -w @pgs/coordinator -- 10000 1000 [runs]
//   PGS_BENCH_COORDINATOR=<main.js> runs another build; PGS_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p" profiles it
// (a measurement, not a test: bench/README.md has its results)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TENANT_SPEC } from '@pgs/tenancy';
import { openStore } from '../store/open-store.js';
import { HealthCache } from '../live/health-cache.js';
import { syncTenant } from '../services/tenant-sync.js';

const [tenants = 10_000, hosts = 1000, runs = 3] = process.argv.slice(2).map(Number);
if (![tenants, hosts, runs].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('usage: restart-bench <tenants> <hosts> [runs] (positive integers)');
const here = path.dirname(fileURLToPath(import.meta.url));
const main = process.env.PGS_BENCH_COORDINATOR ? path.resolve(process.env.PGS_BENCH_COORDINATOR) : path.resolve(here, '../../dist/main.js');
const nodeArgs = (process.env.PGS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const CLK_TCK = 100;

/** A store of `tenants` tenants spread over `hosts` hosts, in transactions of 5,000 tenants. */
async function fill(dir: string): Promise<void> {
  const now = Date.now();
  const { store } = openStore({ dataDir: dir, allowInit: true, routeHistory: 1000, now });
  const health = new HealthCache();
  await store.transaction(async (tx) => {
    for (let h = 0; h < hosts; h++)
      await tx.hosts.put({
        id: `sim${h}`,
        address: `127.64.${(h >> 8) & 255}.${h & 255}`,
        state: 'READY',
        cordoned: false,
        draining: false,
        capacity: { cpuMillis: 64_000, memoryMib: 256_000, diskMib: 4_000_000 },
        labels: { zone: `z${h % 3}` },
        runtime: 'process',
        agentVersion: 'sim',
        lastHeartbeatAt: now,
        registeredAt: now,
        stateChangedAt: now,
        generation: 1,
      });
  });
  const spec = { ...DEFAULT_TENANT_SPEC, resources: { ...DEFAULT_TENANT_SPEC.resources }, labels: {}, placement: {} };
  for (let from = 0; from < tenants; from += 5000) {
    await store.transaction(async (tx) => {
      for (let i = from; i < Math.min(tenants, from + 5000); i++) {
        const id = `t${i}`;
        const hostId = `sim${i % hosts}`;
        await tx.tenants.insert({
          id,
          spec,
          revision: 1,
          instanceRevision: 1,
          status: 'IN_PROGRESS',
          statusReason: '',
          deleting: false,
          createdAt: now,
          updatedAt: now,
        });
        await tx.users.insert({
          tenantId: id,
          name: 'owner',
          description: '',
          scramVerifier: `SCRAM-SHA-256$4096:${Buffer.from(id).toString('base64')}$${'a'.repeat(44)}:${'b'.repeat(44)}`,
          owner: true,
          status: 'ACTIVE',
          statusReason: '',
          revision: 1,
          createdAt: now,
        });
        await tx.placements.insert({
          tenantId: id,
          hostId,
          role: 'PRIMARY',
          realization: 'REALIZED',
          reason: '',
          instanceState: 'RUNNING',
          address: `127.64.${((i % hosts) >> 8) & 255}.${(i % hosts) & 255}`,
          port: 20000 + Math.floor(i / hosts),
          realizedRevision: 1,
          realizedOnce: true,
          failures: 0,
          nextRetryAt: 0,
          updatedAt: now,
        });
        await syncTenant(tx, id, { now, health });
      }
    });
  }
  await store.close();
}

/** utime + stime of `pid` in seconds. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Polls `f` every 20 ms until it is true; returns the ms it took (throws after 10 minutes). */
async function until(f: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 600_000) {
    if (await f().catch(() => false)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the coordinator did not answer within 10 minutes');
}

/** One start: ms and CPU seconds to /healthz and to a first ListTenants answer. */
async function start(dir: string, port: number): Promise<{ healthzMs: number; healthzCpu: number; servingMs: number; servingCpu: number; settledCpu: number }> {
  const ip = `127.${process.env.PGS_TEST_NET ?? '0'}.99.1`;
  const http = `${ip}:${port}`;
  const args = [
    '--grpc-listen',
    `${ip}:${port + 1}`,
    '--http-listen',
    http,
    '--data-dir',
    dir,
    '--insecure',
    '--log-level',
    process.env.PGS_BENCH_LOG_LEVEL ?? 'warn',
  ];
  const child = spawn(process.execPath, [...nodeArgs, main, ...args], { stdio: ['ignore', process.env.PGS_BENCH_LOG_LEVEL ? 'inherit' : 'ignore', 'inherit'] });
  const pid = child.pid!;
  try {
    const healthzMs = await until(async () => (await fetch(`http://${http}/healthz`)).ok);
    const healthzCpu = cpuSeconds(pid);
    const token = fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
    const servingMs = await until(async () => (await fetch(`http://${http}/v1/postgres/instances/t0`, { headers: { authorization: `Bearer ${token}` } })).ok);
    const servingCpu = cpuSeconds(pid);
    // Its first loop ticks (reconciler, idle check) over the whole store, with no agent connected.
    await new Promise((r) => setTimeout(r, 10_000));
    return { healthzMs, healthzCpu, servingMs, servingCpu, settledCpu: cpuSeconds(pid) };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

// PGS_BENCH_KEEP_STORE=<dir>: only fill a store there and keep it (bench/src/scale/rest-cost.ts runs fleets on it).
const keep = process.env.PGS_BENCH_KEEP_STORE;
if (keep) {
  fs.mkdirSync(keep, { recursive: true });
  await fill(keep);
  console.log(`store: ${tenants} tenants on ${hosts} hosts in ${keep}`);
  process.exit(0);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-restart-'));
try {
  const t0 = performance.now();
  await fill(dir);
  console.log(
    `store: ${tenants} tenants on ${hosts} hosts, ${(fs.statSync(path.join(dir, 'coordinator.db')).size / 2 ** 20).toFixed(1)} MiB, filled in ${Math.round(performance.now() - t0)} ms`,
  );
  const port = 20_000 + Math.floor(Math.random() * 20_000); // on the PGS_TEST_NET address: no other checkout's
  // The first start initialises what a fresh data dir lacks (keys, admin token): not measured.
  await start(dir, port);
  console.log(`coordinator: ${main}`);
  console.log(['run', 'healthz ms', 'healthz CPU s', 'serving ms', 'serving CPU s', 'CPU s 10 s later'].join('\t'));
  for (let i = 1; i <= runs; i++) {
    const r = await start(dir, port);
    console.log([i, Math.round(r.healthzMs), r.healthzCpu.toFixed(2), Math.round(r.servingMs), r.servingCpu.toFixed(2), r.settledCpu.toFixed(2)].join('\t'));
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
