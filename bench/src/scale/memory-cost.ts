// What the coordinator holds in memory per tenant: each build is started on copies of two stores
// of different sizes (filled directly, as bench:restart fills them), the fake hosts connect (each
// host's full set delivered, then full instance reports every 5 s as real agents send) and route
// watchers follow the feed (two keep whole tables, as routers do); once every instance is
// delivered and two report periods have passed, the live JavaScript heap is read from a heap
// snapshot (a full collection first, so neither the load nor the collector's timing moves it) and
// RSS from /proc. The difference between the two sizes divided by the tenants between them is
// the cost of one tenant, independent of what a coordinator holds with none.
//
//   PGS_BENCH_KEEP_STORE=/tmp/m5k npm run bench:restart -w @pgs/coordinator -- 5000 200 1   (and /tmp/m20k with 20000)
//   npm run bench:memory-cost -w bench -- /tmp/m5k:5000,/tmp/m20k:20000 200 <main.js>[,<main.js>...] [watchers, default 4]
//
// PGS_BENCH_KEEP_HEAP_SNAPSHOTS=<dir> keeps the snapshots (bench:heap-owners says who holds what).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { heapSnapshotFlags, liveHeapBytes } from '../heap-snapshot.js';
import type { AgentWorkerReply, AgentWorkerRequest, WatcherWorkerReply, WatcherWorkerRequest } from './ipc.js';
import { metricsText, sample } from './coordinator-metrics.js';
import { cpuWindow, memory } from './proc-stats.js';
import { Worker } from './workers.js';

const [storesArg, hostsArg, buildsArg, watchersArg] = process.argv.slice(2);
const stores = (storesArg ?? '').split(',').map((s) => {
  const at = s.lastIndexOf(':');
  return { dir: path.resolve(s.slice(0, at)), tenants: Number(s.slice(at + 1)) };
});
const hosts = Number(hostsArg);
const watchers = Number(watchersArg ?? 4);
if (
  stores.length !== 2 ||
  !stores.every((s) => fs.existsSync(path.join(s.dir, 'coordinator.db')) && Number.isInteger(s.tenants) && s.tenants > 0) ||
  stores[0]!.tenants >= stores[1]!.tenants ||
  !Number.isInteger(hosts) ||
  hosts < 1 ||
  !buildsArg ||
  !Number.isInteger(watchers) ||
  watchers < 0
)
  throw new Error('usage: memory-cost <small store dir>:<tenants>,<large store dir>:<tenants> <hosts> <main.js>[,<main.js>...] [watchers]');
const builds = buildsArg.split(',').map((b) => path.resolve(b));
const ip = `127.${process.env.PGS_TEST_NET ?? '0'}.97.1`;
const port = 30_000 + Math.floor(Math.random() * 20_000);
const http = `${ip}:${port}`;
const grpc = `${ip}:${port + 1}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const load = (): string => os.loadavg()[0]!.toFixed(1);

async function agentsConnected(): Promise<number | undefined> {
  try {
    const r = await fetch(`http://${http}/healthz`);
    return r.ok ? ((await r.json()) as { agents: number }).agents : undefined;
  } catch {
    return undefined;
  }
}

async function until(what: string, f: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await f()) return;
    await sleep(1000);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Measure {
  tenants: number;
  /** Live heap from the snapshot (after a full collection). */
  heap: number;
  /** Before the snapshot (writing one takes memory of its own): RSS, and V8's heap as /metrics says (garbage included). */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  load: string;
}

async function measure(main: string, store: { dir: string; tenants: number }, label: string): Promise<Measure> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-memory-cost-'));
  const snapshots = fs.mkdtempSync(path.join(os.tmpdir(), `pgs-memory-${label}-`));
  fs.cpSync(store.dir, dataDir, { recursive: true });
  const args = ['--grpc-listen', grpc, '--http-listen', http, '--data-dir', dataDir, '--insecure', '--log-level', 'warn'];
  const coordinator: ChildProcess = spawn(process.execPath, [...heapSnapshotFlags(snapshots), main, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  let agents: Worker<AgentWorkerRequest, AgentWorkerReply> | undefined;
  const watcherWorkers: Array<Worker<WatcherWorkerRequest, WatcherWorkerReply>> = [];
  try {
    await until('the coordinator', async () => (await agentsConnected()) !== undefined, 300_000);
    agents = new Worker('agents', 'agent-worker.ts', {
      grpc,
      from: 0,
      to: hosts,
      channels: Math.max(1, Math.ceil(hosts / 64)),
      reportIntervalMs: 5000,
      fullReportIntervalMs: 15_000,
    });
    if (watchers > 0)
      watcherWorkers.push(new Worker('watchers', 'watcher-worker.ts', { grpc, from: 0, count: watchers, full: Math.min(2, watchers), togglePool: 1 }));
    let delivered = 0;
    await until(
      `every instance delivered (${store.tenants})`,
      async () => {
        const s = await agents!.ask({ type: 'stats' });
        if (s.type === 'stats') delivered = s.placements;
        const w = watcherWorkers[0] ? await watcherWorkers[0].ask({ type: 'stats' }) : undefined;
        const watching = w === undefined || (w.type === 'stats' && w.connected >= watchers);
        return delivered >= store.tenants && ((await agentsConnected()) ?? 0) >= hosts && watching;
      },
      900_000,
    );
    // Settled: the first reports of every instance applied (under 0.35 cores for 5 s, at most 5
    // minutes), then two full report periods: what reports fill (health, unchanged-report facts) is held.
    const pid = coordinator.pid as number;
    for (let t0 = performance.now(); performance.now() - t0 < 300_000;) {
      const cpu = cpuWindow(pid);
      await sleep(5000);
      if (cpu().cores < 0.35) break;
    }
    await sleep(12_000);
    const rss = memory(pid).rss;
    const text = await metricsText(http);
    const m = (name: string): number => sample(text, name) ?? Number.NaN;
    const before = {
      rss,
      heapUsed: m('nodejs_heap_size_used_bytes'),
      heapTotal: m('nodejs_heap_size_total_bytes'),
      external: m('nodejs_external_memory_bytes'),
    };
    const heap = await liveHeapBytes(pid, snapshots, 600_000);
    return { tenants: store.tenants, heap, ...before, load: load() };
  } finally {
    for (const w of watcherWorkers) await w.stop();
    await agents?.stop();
    if (coordinator.exitCode === null && coordinator.signalCode === null) {
      const exited = new Promise((r) => coordinator.once('exit', r));
      coordinator.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(snapshots, { recursive: true, force: true });
  }
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
console.log(
  `memory-cost: ${hosts} fake hosts, ${watchers} route watchers; load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
const columns = ['live heap', 'RSS', 'V8 heap used', 'V8 heap total', 'external'] as const;
const of = (x: Measure): number[] => [x.heap, x.rss, x.heapUsed, x.heapTotal, x.external];
console.log(
  ['build', ...[0, 1].flatMap(() => ['tenants', ...columns.map((c) => `${c} MiB`), 'load']), ...columns.map((c) => `${c} KiB per tenant`)].join('\t'),
);
for (const main of builds) {
  const small = await measure(main, stores[0]!, `${path.basename(path.dirname(path.dirname(main)))}-${stores[0]!.tenants}`);
  const large = await measure(main, stores[1]!, `${path.basename(path.dirname(path.dirname(main)))}-${stores[1]!.tenants}`);
  const per = large.tenants - small.tenants;
  const a = of(small);
  const b = of(large);
  console.log(
    [main, ...[small, large].flatMap((x) => [x.tenants, ...of(x).map(mib), x.load]), ...a.map((v, i) => ((b[i]! - v) / per / 1024).toFixed(2))].join('\t'),
  );
}
