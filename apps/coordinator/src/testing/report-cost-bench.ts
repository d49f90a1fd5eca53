// What an instance report that changes nothing costs the coordinator, in process on a filled store:
// the first report of every host of a first start (every instance as stored, healthy), applied in
// full (re-derived, as every report the coordinator had not seen was before) and checked against
// the store only (services/report-split.ts), each host's report in its own grouped transaction as
// the agent stream takes it. CPU time of this process (what a loaded machine does not distort).
//
//   PGS_BENCH_KEEP_STORE=/tmp/s npm run bench:restart -w @pgs/coordinator -- 30000 300 1   (the store)
//   npm run bench:report-cost -w @pgs/coordinator -- /tmp/s [rounds]
// (a measurement, not a test: bench/README.md has its results)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import { HealthCache } from '../live/health-cache.js';
import { aHealthView } from './records.js';
import { applyInstanceReports } from '../services/instance-reports.js';
import { splitReports } from '../services/report-split.js';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import type { Store } from '../store/contract.js';

const [storeDir, roundsArg = '3'] = process.argv.slice(2);
const rounds = Number(roundsArg);
if (!storeDir || !fs.existsSync(path.join(storeDir, 'coordinator.db')) || !(Number.isInteger(rounds) && rounds >= 1))
  throw new Error('usage: report-cost-bench <store dir (with coordinator.db)> [rounds]');

const healthy = aHealthView();

/** Every host's first report: its instances exactly as stored. */
async function firstReports(store: Store): Promise<Map<string, InstanceReportView[]>> {
  const out = new Map<string, InstanceReportView[]>();
  for (const host of await store.read.hosts.list()) {
    const reports = (await store.read.placements.list({ hostId: host.id })).map((p) => ({
      tenantId: p.tenantId,
      realization: p.realization,
      state: p.instanceState,
      reason: p.reason,
      address: p.address,
      port: p.port,
      specRevision: p.realizedRevision,
      health: { ...healthy, role: p.role },
      recovery: undefined,
    }));
    out.set(host.id, reports);
  }
  return out;
}

type Way = 'applied in full' | 'checked against the store';

/** CPU ms for every host's first report one way (each a grouped transaction, all queued at once as a fleet's arrive). */
async function run(way: Way): Promise<{ cpuMs: number; instances: number; hosts: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-report-cost-'));
  fs.copyFileSync(path.join(storeDir as string, 'coordinator.db'), path.join(dir, 'coordinator.db'));
  const { store } = openStore({ dataDir: dir, allowInit: false, routeHistory: 1000, now: Date.now() });
  try {
    const reports = await firstReports(store);
    const health = new HealthCache();
    const now = Date.now();
    const t0 = process.cpuUsage();
    await Promise.all(
      [...reports].map(([hostId, list]) =>
        store.transaction(
          async (tx) =>
            way === 'applied in full'
              ? await applyInstanceReports(tx, hostId, list, { now, health, retry: { baseMs: 2000, maxMs: 120_000 } })
              : await splitReports(tx, hostId, list, health),
          { grouped: true },
        ),
      ),
    );
    const used = process.cpuUsage(t0);
    return { cpuMs: (used.user + used.system) / 1000, instances: [...reports.values()].reduce((n, l) => n + l.length, 0), hosts: reports.size };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(['way', 'hosts', 'instances', 'CPU ms', 'CPU µs per instance', 'load average'].join('\t'));
for (let i = 0; i < rounds; i++) {
  for (const way of ['applied in full', 'checked against the store'] as const) {
    const r = await run(way);
    console.log([way, r.hosts, r.instances, r.cpuMs.toFixed(0), ((r.cpuMs * 1000) / r.instances).toFixed(1), os.loadavg()[0]?.toFixed(1)].join('\t'));
  }
}
