// Fleet benchmark: density, idle tenants per GiB on the process runtime. Starts K
// tenants on one host agent, lets them go idle, then sums the proportional set size (PSS, from
// /proc/<pid>/smaps_rollup) of each tenant's postmaster and all its children; RSS shown beside it.
// Goal: an idle tenant under 12 MiB.
//
//   npm run bench:density -w bench         (PGS_BENCH_TENANTS=20)
import { HostState, TenantStatus } from '@pgs/proto';
import { poll, withFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { createTenant } from './fleet-tenants.js';
import { measureInstances as measure } from './instance-memory.js';

const K = Math.min(100, Number(process.env.PGS_BENCH_TENANTS ?? 20)); // one host's 100 ports
const GOAL_MIB = 12;

await withFleet({ name: 'density', block: 34, agents: 1, routers: 0, agentArgs: ['--spare-clones', '0'] }, async (fleet) => {
  for (let i = 0; i < K; i++) await createTenant(fleet, `idle-${i}`, { externalAccess: false });
  await poll(
    `${K} tenants ACTIVE`,
    async () => {
      const { tenants } = await fleet.client.listTenants({ status: TenantStatus.ACTIVE, page: { pageSize: 1000 } });
      return tenants.length >= K;
    },
    10 * 60_000,
    500,
  );
  const hosts = await fleet.client.listHosts({ state: HostState.READY });
  const root = fleet.hostDataRoots[0];
  if (!root || hosts.hosts.length !== 1) throw new Error('one READY host expected');
  // Idle means past start-up: wait until the total PSS moves less than 2% between two looks 5 s apart.
  let previous = Number.POSITIVE_INFINITY;
  let samples = measure(root);
  await poll(
    'memory to settle',
    async () => {
      await new Promise((r) => setTimeout(r, 5000));
      samples = measure(root);
      const total = samples.reduce((s, x) => s + x.pssMib, 0);
      const settled = Math.abs(total - previous) / total < 0.02;
      previous = total;
      return settled;
    },
    120_000,
    0,
  );
  if (samples.length !== K) throw new Error(`found ${samples.length} postmasters for ${K} tenants`);
  const pss = summarize(samples.map((s) => s.pssMib));
  const rss = summarize(samples.map((s) => s.rssMib));
  const perGib = 1024 / pss.mean;
  report('fleet-density', {
    tables: [
      {
        title: `Density: ${K} idle tenants on the process runtime (MiB per tenant: postmaster + its ${(samples[0]?.processes ?? 1) - 1} children)`,
        columns: ['measure', 'mean', 'p50', 'max', `goal < ${GOAL_MIB} MiB`],
        rows: [
          ['PSS', pss.mean, pss.p50, pss.max, verdict(pss.mean < GOAL_MIB)],
          ['RSS (shared pages counted in each)', rss.mean, rss.p50, rss.max, ''],
          ['idle tenants per GiB (by PSS)', Math.floor(perGib), '', '', ''],
        ],
      },
    ],
    data: { tenants: K, perTenant: samples, pss, rss, tenantsPerGib: perGib },
    chart: barChartSvg(
      'Idle tenant memory (MiB)',
      'MiB',
      [
        { label: 'PSS mean', value: pss.mean },
        { label: 'PSS max', value: pss.max },
        { label: 'RSS mean', value: rss.mean },
      ],
      { value: GOAL_MIB, label: `goal ${GOAL_MIB} MiB` },
    ),
  });
});
