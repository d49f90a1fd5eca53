// What the coordinator's per-tick reads of "the few tenants a loop watches" cost as the fleet grows:
// the idle-suspend check (every second) and the failover watch (every reconcile tick), on the
// coordinator's own SQLite store, with N tenants of which 1% have an
// idle-suspend policy and 1% two nodes. "scan" is the read as the loops did it before the partial
// indexes (every ACTIVE tenant into JavaScript then filtered; a json_extract scan of every row);
// "indexed" is the read they do now. Each read holds the coordinator's event loop for its duration.
//
//   npm run bench:watched-reads -w @pgs/coordinator -- 10000 100000
// (a measurement, not a test: bench/README.md has its results)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_TENANT_SPEC } from '@pgs/tenancy';
import { DB_FILE, openStore } from '../store/open-store.js';

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 100))
  throw new Error('usage: store-reads <tenants> [<tenants> ...] (each an integer >= 100)');

/** Median ms of `runs` calls. */
async function time(runs: number, read: () => Promise<unknown>): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await read();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b)[Math.floor(out.length / 2)] as number;
}

const rows: Array<Array<string | number>> = [];
for (const n of sizes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-store-reads-'));
  try {
    const { store } = openStore({ dataDir: dir, allowInit: true, routeHistory: 1000, now: Date.now() });
    const spec = { ...DEFAULT_TENANT_SPEC, resources: { ...DEFAULT_TENANT_SPEC.resources }, labels: {}, placement: {} };
    for (let from = 0; from < n; from += 10_000) {
      await store.transaction(async (tx) => {
        for (let i = from; i < Math.min(n, from + 10_000); i++) {
          const idle = i % 100 === 1 ? 300 : undefined;
          await tx.tenants.insert({
            id: `t${i}`,
            spec: { ...spec, nodes: i % 100 === 2 ? 2 : 1, idleSuspendSeconds: idle },
            revision: 1,
            instanceRevision: 1,
            status: 'ACTIVE',
            statusReason: '',
            deleting: false,
            createdAt: 1,
            updatedAt: 1,
          });
        }
      });
    }
    const runs = n >= 500_000 ? 3 : 7;
    const idleIndexed = await time(runs, async () => (await store.read.tenants.listIdleSuspend()).filter((t) => t.spec.nodes === 1));
    const idleScan = await time(runs, async () =>
      (await store.read.tenants.list({ status: 'ACTIVE' })).filter((t) => (t.spec.idleSuspendSeconds ?? 0) > 0 && t.spec.nodes === 1),
    );
    const replicatedIndexed = await time(runs, () => store.read.tenants.listReplicated());
    await store.close();
    // The same statement without its index: as the failover watch read before it.
    const db = new Database(path.join(dir, DB_FILE));
    db.exec('DROP INDEX tenants_replicated');
    const scan = db.prepare(`SELECT * FROM tenants WHERE json_extract(spec, '$.nodes') >= 2 ORDER BY id`);
    const replicatedScan = await time(runs, async () => scan.all());
    db.close();
    rows.push([
      n.toLocaleString('en'),
      Math.round(idleScan * 10) / 10,
      Math.round(idleIndexed * 100) / 100,
      Math.round(replicatedScan * 10) / 10,
      Math.round(replicatedIndexed * 100) / 100,
    ]);
    console.log(`${n} tenants measured`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
console.log('Per-tick reads of the watched tenants (ms, median; each holds the event loop): idle check every 1 s, failover watch every reconcile tick');
console.log(['tenants', 'idle-suspend scan', 'idle-suspend indexed', 'replicated scan', 'replicated indexed'].join('\t'));
for (const r of rows) console.log(r.join('\t'));
