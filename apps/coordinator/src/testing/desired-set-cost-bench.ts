// What building the full desired sets of a fleet's first start costs the coordinator, in process on
// a filled store: every host's full set built as the agent hub builds it after a Hello (in slices,
// each a read transaction), one host after another. CPU time of this process (what a loaded machine
// does not distort), per instance.
//
//   PGS_BENCH_KEEP_STORE=/tmp/s npm run bench:restart -w @pgs/coordinator -- 100000 1000 1   (the store)
//   npm run bench:desired-set-cost -w @pgs/coordinator -- /tmp/s [rounds] [hosts]
// (a measurement, not a test: bench/README.md has its results)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeSecretKey, deriveKeyId, generateSecretKey, KeyRing } from '@pgs/security';
import { openStore } from '../store/open-store.js';
import { desiredSetInSlices } from '../services/desired-set-slices.js';
import { VersionCatalog } from '../services/versions.js';
import { SyncQuorums } from '../live/sync-quorums.js';

const [storeDir, roundsArg = '3', hostsArg = '0'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const hostLimit = Number(hostsArg);
if (!storeDir || !fs.existsSync(path.join(storeDir, 'coordinator.db')) || !(Number.isInteger(rounds) && rounds >= 1) || !Number.isInteger(hostLimit))
  throw new Error('usage: desired-set-cost-bench <store dir (with coordinator.db)> [rounds] [hosts, 0 = all]');

/** A throwaway key ring (the sets built here carry no replication secret: every tenant is single-node). */
function ringOfOne(): KeyRing {
  const key = decodeSecretKey(generateSecretKey(), 'bench');
  return new KeyRing([{ id: deriveKeyId(key), key }]);
}

/** CPU ms to build every host's full desired set once. */
async function run(): Promise<{ cpuMs: number; wallMs: number; instances: number; hosts: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-desired-cost-'));
  fs.copyFileSync(path.join(storeDir as string, 'coordinator.db'), path.join(dir, 'coordinator.db'));
  const { store } = openStore({ dataDir: dir, allowInit: false, routeHistory: 1000, now: Date.now() });
  try {
    const hosts = (await store.read.hosts.list()).map((h) => h.id);
    const chosen = hostLimit > 0 ? hosts.slice(0, hostLimit) : hosts;
    const versions = new VersionCatalog([{ id: '15', image: 'pg:15', deprecated: false }]);
    const replication = { keys: ringOfOne(), quorums: new SyncQuorums() };
    let instances = 0;
    const w0 = performance.now();
    const t0 = process.cpuUsage();
    for (const hostId of chosen) instances += (await desiredSetInSlices(store, hostId, versions, replication)).instances.length;
    const used = process.cpuUsage(t0);
    return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - w0, instances, hosts: chosen.length };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(['hosts', 'instances', 'CPU ms', 'CPU µs per instance', 'wall ms', 'load average'].join('\t'));
for (let i = 0; i < rounds; i++) {
  const r = await run();
  console.log(
    [r.hosts, r.instances, r.cpuMs.toFixed(0), ((r.cpuMs * 1000) / r.instances).toFixed(1), r.wallMs.toFixed(0), os.loadavg()[0]?.toFixed(1)].join('\t'),
  );
}
