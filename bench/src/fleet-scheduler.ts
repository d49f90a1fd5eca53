// Fleet benchmark (issue 9): the scheduler at scale. A real coordinator process; 1,000 simulated
// hosts as fake agents on real gRPC streams in this one process; 100,000 tenants. The tenants are
// created first with no host connected (a backlog, so the API's own cost, a SCRAM verifier per
// owner, is measured apart), then all hosts connect and the coordinator places the backlog.
// Headline: placements committed (and delivered on the agents' streams) per second.
// Goal: at least 1,000 per second.
//
//   npm run bench:scheduler -w bench     (PGS_BENCH_TENANTS=100000, PGS_BENCH_HOSTS=1000)
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { AgentControlService, RunState } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { FakeAgent, type FakeAgentStats } from './fleet-fake-agent.js';
import { poll, withFleet } from './fleet-launcher.js';
import { barChartSvg, report, verdict } from './fleet-report.js';

const TENANTS = Number(process.env.PGS_BENCH_TENANTS ?? 100_000);
const HOSTS = Number(process.env.PGS_BENCH_HOSTS ?? 1_000);
const CREATE_CONCURRENCY = 64;
/** Streams share a few channels, as many agents behind one NAT would. */
const CHANNELS = 16;

await withFleet({ name: 'scheduler', block: 33, agents: 0, routers: 0, coordinatorArgs: ['--log-level', 'warn', '--host-ttl', '30s', '--host-down-grace', '30s'] }, async (fleet) => {
  // Phase 1: the backlog.
  const createStart = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, async () => {
    while (next < TENANTS) {
      const i = next++;
      await fleet.client.createTenant({
        id: `t${i}`,
        ownerPassword: 'bench-owner-secret',
        spec: { resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 }, nodes: 1, runState: RunState.RUNNING },
      });
      if (i > 0 && i % 5_000 === 0) console.log(`  created ${i.toLocaleString('en')} tenants`);
    }
  }));
  const createMs = performance.now() - createStart;
  console.log(`created ${TENANTS.toLocaleString('en')} tenants in ${(createMs / 1000).toFixed(1)} s; connecting ${HOSTS} fake hosts`);

  // Phase 2: every host connects; the scheduler places the backlog onto them.
  const stats: FakeAgentStats = { placementsReceived: 0, lastPlacementAt: 0, welcomed: 0, streamFailures: 0, failureSamples: [] };
  const channels = Array.from({ length: CHANNELS }, () => createClient(AgentControlService, fleet.grpc, credentials.createInsecure()));
  const agents = Array.from({ length: HOSTS }, (_, i) => new FakeAgent(channels[i % CHANNELS] as (typeof channels)[number], `sim${i}`, `127.1.${i >> 8}.${i & 255}`, `z${i % 3}`, stats));
  const connectStart = performance.now();
  let allWelcomedMs = Number.NaN;
  for (const a of agents) a.start();
  await poll(`${TENANTS} placements`, async () => {
    if (Number.isNaN(allWelcomedMs) && stats.welcomed >= HOSTS) allWelcomedMs = performance.now() - connectStart;
    return stats.placementsReceived >= TENANTS;
  }, 30 * 60_000, 20);
  const placeMs = stats.lastPlacementAt - connectStart;
  const rate = TENANTS / (placeMs / 1000);
  await poll(`${HOSTS} hosts welcomed`, async () => stats.welcomed >= HOSTS, 5 * 60_000, 50);
  if (Number.isNaN(allWelcomedMs)) allWelcomedMs = performance.now() - connectStart;
  const status = await fleet.client.getFleetStatus({});
  for (const a of agents) a.stop();
  for (const c of channels) c.close();

  report('fleet-scheduler', {
    tables: [{
      title: `Scheduler: ${TENANTS.toLocaleString('en')} tenants onto ${HOSTS.toLocaleString('en')} simulated hosts (fake agents on real gRPC streams)`,
      columns: ['measure', 'value'],
      rows: [
        ['tenants created (API, SCRAM per owner) /s', Math.round(TENANTS / (createMs / 1000))],
        [`all ${HOSTS} agents welcomed (ms)`, Math.round(allWelcomedMs)],
        ['agent streams failed and retried', stats.streamFailures],
        ['backlog placed and delivered (s)', Math.round(placeMs) / 1000],
        ['placements committed /s', Math.round(rate)],
        ['goal >= 1,000 /s', verdict(rate >= 1000)],
        ['tenants by status after', Object.entries(status.tenantsByStatus).map(([k, v]) => `${k}=${v}`).join(' ')],
      ],
    }],
    data: { tenants: TENANTS, hosts: HOSTS, createMs, allWelcomedMs, streamFailures: stats.streamFailures, failureSamples: stats.failureSamples, placeMs, placementsPerSecond: rate, tenantsByStatus: status.tenantsByStatus },
    chart: barChartSvg('Scheduler throughput (per second)', '/s', [
      { label: 'creates', value: TENANTS / (createMs / 1000) },
      { label: 'placements', value: rate },
    ], { value: 1000, label: 'goal 1,000/s' }),
  });
});
