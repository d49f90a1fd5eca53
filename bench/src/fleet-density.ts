// Fleet benchmark (issue 9): density, idle tenants per GiB on the process runtime. Starts K
// tenants on one host agent, lets them go idle, then sums the proportional set size (PSS, from
// /proc/<pid>/smaps_rollup) of each tenant's postmaster and all its children; RSS shown beside it.
// Goal: an idle tenant under 12 MiB.
//
//   npm run bench:density -w bench         (PGS_BENCH_TENANTS=20)
import fs from 'node:fs';
import { HostState, TenantStatus } from '@pgs/proto';
import { poll, withFleet } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';
import { createTenant } from './fleet-tenants.js';

const K = Math.min(100, Number(process.env.PGS_BENCH_TENANTS ?? 20)); // one host's 100 ports
const GOAL_MIB = 12;

/** Live postmasters under a data root, by the data dir's tenant (the directory above data/). */
function postmasters(root: string): Map<number, string> {
  const out = new Map<number, string>();
  const walk = (dir: string, depth: number): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = `${dir}/${e.name}`;
      if (e.isFile() && e.name === 'postmaster.pid') {
        const pid = Number(fs.readFileSync(full, 'utf8').split('\n')[0]);
        if (fs.existsSync(`/proc/${pid}`)) out.set(pid, dir);
      } else if (e.isDirectory() && depth > 0) walk(full, depth - 1);
    }
  };
  walk(root, 5);
  return out;
}

/** pid -> parent pid of every process. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      out.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  return out;
}

/** Pss and Rss (KiB) of one process from smaps_rollup; zeros when it has gone. */
function memoryOf(pid: number): { pss: number; rss: number } {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return { pss: 0, rss: 0 };
    throw err;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { pss: field('Pss'), rss: field('Rss') };
}

/** PSS and RSS (MiB) of each tenant: its postmaster plus every child process. */
function measure(root: string): Array<{ pid: number; processes: number; pssMib: number; rssMib: number }> {
  const pp = parents();
  return [...postmasters(root).keys()].map((pid) => {
    const tree = [pid, ...[...pp].filter(([, parent]) => parent === pid).map(([child]) => child)];
    const sum = tree.map(memoryOf).reduce((a, m) => ({ pss: a.pss + m.pss, rss: a.rss + m.rss }), { pss: 0, rss: 0 });
    return { pid, processes: tree.length, pssMib: sum.pss / 1024, rssMib: sum.rss / 1024 };
  });
}

await withFleet({ name: 'density', block: 34, agents: 1, routers: 0, agentArgs: ['--spare-clones', '0'] }, async (fleet) => {
  for (let i = 0; i < K; i++) await createTenant(fleet, `idle-${i}`, { externalAccess: false });
  await poll(`${K} tenants ACTIVE`, async () => {
    const { tenants } = await fleet.client.listTenants({ status: TenantStatus.ACTIVE, page: { pageSize: 1000 } });
    return tenants.length >= K;
  }, 10 * 60_000, 500);
  const hosts = await fleet.client.listHosts({ state: HostState.READY });
  const root = fleet.hostDataRoots[0];
  if (!root || hosts.hosts.length !== 1) throw new Error('one READY host expected');
  // Idle means past start-up: wait until the total PSS moves less than 2% between two looks 5 s apart.
  let previous = Number.POSITIVE_INFINITY;
  let samples = measure(root);
  await poll('memory to settle', async () => {
    await new Promise((r) => setTimeout(r, 5000));
    samples = measure(root);
    const total = samples.reduce((s, x) => s + x.pssMib, 0);
    const settled = Math.abs(total - previous) / total < 0.02;
    previous = total;
    return settled;
  }, 120_000, 0);
  if (samples.length !== K) throw new Error(`found ${samples.length} postmasters for ${K} tenants`);
  const pss = summarize(samples.map((s) => s.pssMib));
  const rss = summarize(samples.map((s) => s.rssMib));
  const perGib = 1024 / pss.mean;
  report('fleet-density', {
    tables: [{
      title: `Density: ${K} idle tenants on the process runtime (MiB per tenant: postmaster + its ${(samples[0]?.processes ?? 1) - 1} children)`,
      columns: ['measure', 'mean', 'p50', 'max', `goal < ${GOAL_MIB} MiB`],
      rows: [
        ['PSS', pss.mean, pss.p50, pss.max, verdict(pss.mean < GOAL_MIB)],
        ['RSS (shared pages counted in each)', rss.mean, rss.p50, rss.max, ''],
        ['idle tenants per GiB (by PSS)', Math.floor(perGib), '', '', ''],
      ],
    }],
    data: { tenants: K, perTenant: samples, pss, rss, tenantsPerGib: perGib },
    chart: barChartSvg('Idle tenant memory (MiB)', 'MiB', [
      { label: 'PSS mean', value: pss.mean }, { label: 'PSS max', value: pss.max }, { label: 'RSS mean', value: rss.mean },
    ], { value: GOAL_MIB, label: `goal ${GOAL_MIB} MiB` }),
  });
});
