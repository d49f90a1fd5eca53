// HA benchmark: failover time, from killing the primary's whole host (agent and
// postgres, SIGKILL) to a write accepted through the router again, over PGS_BENCH_RUNS runs (10),
// with one synchronous replica and the coordinator's and agents' DEFAULT timing. Broken into the
// coordinator's audited steps (failover.completed details: detection, fencing, promotion, route)
// and the rest (route propagation to the router and the client's next retry). Every run also checks
// that no acknowledged commit was lost. Goal: p50 under 3 s and max under 5 s: the agent's broken
// stream and the replica's lost walreceiver confirm each other, so neither the heartbeat TTL nor the
// lease is waited for.
//
//   npm run bench:failover -w bench             (PGS_BENCH_RUNS=10)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { HostState, InstanceRole, RunState, TenantStatus } from '@pgs/proto';
import { BENCH_NET, poll, withFleet, type BenchFleet, type BenchRouter } from './fleet-launcher.js';
import { barChartSvg, report, summarize, verdict } from './fleet-report.js';

const RUNS = Number(process.env.PGS_BENCH_RUNS ?? 10);
const PASSWORD = 'failover-bench-secret';
const BLOCK = 36;
const AGENT = path.resolve(import.meta.dirname, '..', '..', 'apps', 'host-agent', 'dist', 'main.js');

/** Agents are started here (not by the launcher) so a run can kill a whole host and bring it back. */
class Hosts {
  private readonly children = new Map<number, ChildProcess>();

  constructor(private readonly fleet: BenchFleet) {}

  address(i: number): string {
    return `127.${BENCH_NET}.${BLOCK}.${11 + i}`;
  }

  dataRoot(i: number): string {
    return path.join(this.fleet.root, `h${i + 1}`);
  }

  start(i: number): void {
    const root = this.dataRoot(i);
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    const base = 16000 + i * 100;
    const fd = fs.openSync(path.join(this.fleet.root, `agent-h${i + 1}.log`), 'a');
    const child = spawn(
      process.execPath,
      [
        AGENT,
        '--host-id',
        `h${i + 1}`,
        '--address',
        this.address(i),
        '--coordinator',
        this.fleet.grpc,
        '--data-root',
        root,
        '--runtime',
        'process',
        '--port-range',
        `${base}-${base + 99}`,
        '--ops-listen',
        `${this.address(i)}:0`,
        '--labels',
        `zone=z${i + 1}`,
        '--cpu',
        '64',
        '--memory',
        '256Gi',
        '--disk',
        '4Ti',
      ],
      { cwd: root, stdio: ['ignore', fd, fd], env: { ...process.env, PGS_INSECURE: 'true' } },
    );
    fs.closeSync(fd);
    this.children.set(i, child);
  }

  /** The host is lost: its agent and every process under its data root get SIGKILL. */
  kill(i: number): void {
    this.children.get(i)?.kill('SIGKILL');
    const root = this.dataRoot(i);
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      } catch (err) {
        if (!['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
      if (cwd.startsWith(root)) {
        try {
          process.kill(Number(e), 'SIGKILL');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
  }
}

/** A client inserting consecutive ids through the router; only acknowledged ids are recorded. */
async function writeUntil(
  router: BenchRouter,
  id: string,
  stop: () => boolean,
  acked: number[],
  ackedAt: number[],
  failures: Map<string, number>,
  failedAt: number[],
): Promise<void> {
  let next = 0;
  while (!stop()) {
    const client = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: PASSWORD, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      while (!stop()) {
        await client.query('insert into acked (id) values ($1)', [next]);
        acked.push(next);
        ackedAt.push(Date.now());
        next += 1;
      }
    } catch (err) {
      // Unacknowledged (maybe committed, maybe not): never counted, whatever the error (57P03 while
      // the route says failover, a reset when the host dies, a refused backend). Kept for the report.
      const code = String((err as { code?: string }).code ?? 'no sqlstate');
      failures.set(code, (failures.get(code) ?? 0) + 1);
      failedAt.push(Date.now());
      next += 1;
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

interface Run {
  endToEndMs: number;
  detectionMs: number;
  fencingMs: number;
  promotionMs: number;
  routeMs: number;
  /** End to end minus the coordinator's steps: route propagation to the router and the client's retry. */
  propagationMs: number;
  acked: number;
  lost: number;
  /** Failed write attempts by SQLSTATE (or 'no sqlstate' for a dropped connection). */
  errors: Record<string, number>;
  /** How the old primary counted as fenced: gone (found dead with its agent), lease or ack. */
  fencedVia: string;
}

async function readyHosts(fleet: BenchFleet): Promise<string[]> {
  return (await fleet.client.listHosts({})).hosts.filter((h) => h.state === HostState.READY).map((h) => h.id);
}

async function oneRun(fleet: BenchFleet, hosts: Hosts, router: BenchRouter, n: number): Promise<Run> {
  const id = `fo${n}`;
  await fleet.client.createTenant({
    id,
    ownerPassword: PASSWORD,
    spec: { resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 }, nodes: 2, syncReplicas: 1, externalAccess: true, runState: RunState.RUNNING },
  });
  const healthyPair = async (): Promise<boolean> => {
    const t = (await fleet.client.getTenant({ id })).tenant;
    return t?.status === TenantStatus.ACTIVE && t.placements.length === 2 && t.placements.every((p) => p.health?.up === true && p.health.role === p.role);
  };
  await poll(`tenant ${id} ACTIVE with a streaming replica`, healthyPair, 120_000, 200);
  const owner = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: PASSWORD });
  await poll(
    `tenant ${id} through the router`,
    async () => {
      await owner.connect();
      return true;
    },
    30_000,
    100,
  );
  await owner.query('create table acked (id int primary key)');
  await owner.end();
  const tenant = (await fleet.client.getTenant({ id })).tenant;
  const primaryHost = tenant?.placements.find((p) => p.role === InstanceRole.PRIMARY)?.hostId ?? '';
  const index = Number(primaryHost.slice(1)) - 1;

  const acked: number[] = [];
  const ackedAt: number[] = [];
  let stopping = false;
  const failures = new Map<string, number>();
  const failedAt: number[] = [];
  const writer = writeUntil(router, id, () => stopping, acked, ackedAt, failures, failedAt);
  await poll('writes flowing', async () => acked.length >= 50, 30_000, 20);
  const killedAt = Date.now();
  hosts.kill(index);
  // A commit in flight when the signal lands may still be acknowledged: writes resume with the first
  // acknowledgement after the first failure the kill caused.
  const brokeAt = (): number | undefined => failedAt.find((t) => t >= killedAt);
  await poll(
    'a write accepted after the kill',
    async () => {
      const b = brokeAt();
      return b !== undefined && ackedAt.some((t) => t > b);
    },
    120_000,
    5,
  );
  const broke = brokeAt() ?? killedAt;
  const resumedAt = ackedAt.find((t) => t > broke) ?? killedAt;
  const ackedBefore = acked.length;
  await poll('writes continue', async () => acked.length >= ackedBefore + 20, 30_000, 20);
  stopping = true;
  await writer;

  const check = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: PASSWORD });
  await check.connect();
  const present = new Set((await check.query<{ id: number }>('select id from acked')).rows.map((r) => r.id));
  await check.end();
  const events = (await fleet.client.listEvents({ tenantId: id, limit: 200 })).events;
  const done = events.find((e) => e.action === 'failover.completed');
  const d = (k: string): number => Number(done?.details[k] ?? NaN);
  const endToEndMs = resumedAt - killedAt;
  const steps = d('detection_ms') + d('fencing_ms') + d('promotion_ms') + d('route_ms');
  // The host comes back for the next run; its old primary rejoins as a replica (not measured here).
  hosts.start(index);
  await poll(`host ${primaryHost} READY again`, async () => (await readyHosts(fleet)).includes(primaryHost), 60_000, 200);
  await fleet.client.deleteTenant({ id }).catch((err: unknown) => console.error(`delete ${id}: ${String(err)}`));
  return {
    endToEndMs,
    detectionMs: d('detection_ms'),
    fencingMs: d('fencing_ms'),
    promotionMs: d('promotion_ms'),
    routeMs: d('route_ms'),
    propagationMs: Math.max(0, endToEndMs - steps),
    acked: acked.length,
    lost: acked.filter((a) => !present.has(a)).length,
    errors: Object.fromEntries(failures),
    fencedVia: events.find((e) => e.action === 'failover.fenced')?.details.via ?? '?',
  };
}

await withFleet({ name: 'failover', block: BLOCK, agents: 0, routers: 1 }, async (fleet) => {
  const hosts = new Hosts(fleet);
  hosts.start(0);
  hosts.start(1);
  await poll('2 hosts READY', async () => (await readyHosts(fleet)).length === 2, 60_000, 200);
  const router = fleet.routers[0];
  if (!router) throw new Error('no router');
  const runs: Run[] = [];
  for (let n = 1; n <= RUNS; n++) {
    const r = await oneRun(fleet, hosts, router, n);
    runs.push(r);
    console.log(
      `run ${n}: kill -> write ${r.endToEndMs} ms (detection ${r.detectionMs}, fencing ${r.fencingMs} via ${r.fencedVia}, promotion ${r.promotionMs}, route ${r.routeMs}, propagation+retry ${r.propagationMs}); ${r.acked} acked, ${r.lost} lost; failed attempts ${JSON.stringify(r.errors)}`,
    );
  }
  const col = (f: (r: Run) => number): ReturnType<typeof summarize> => summarize(runs.map(f));
  const e2e = col((r) => r.endToEndMs);
  const rows = (
    [
      ['detection', col((r) => r.detectionMs)],
      ['fencing', col((r) => r.fencingMs)],
      ['promotion', col((r) => r.promotionMs)],
      ['route (coordinator)', col((r) => r.routeMs)],
      ['propagation + client retry', col((r) => r.propagationMs)],
      ['kill -> write accepted', e2e],
    ] as const
  ).map(([name, s]) => [name, Math.round(s.p50), Math.round(s.max)]);
  const lost = runs.reduce((a, r) => a + r.lost, 0);
  report('failover', {
    tables: [
      {
        title: `Failover with one synchronous replica, default settings, ${RUNS} runs (ms)`,
        columns: ['step', 'p50', 'max'],
        rows,
      },
      {
        title: 'Goals',
        columns: ['goal', 'measured', 'verdict'],
        rows: [
          ['kill -> write accepted under 3 s (p50)', `${Math.round(e2e.p50)} ms`, verdict(e2e.p50 < 3_000)],
          ['kill -> write accepted under 5 s (max)', `${Math.round(e2e.max)} ms`, verdict(e2e.max < 5_000)],
          ['zero acknowledged commits lost', `${lost} lost of ${runs.reduce((a, r) => a + r.acked, 0)}`, verdict(lost === 0)],
        ],
      },
    ],
    data: { runs },
    chart: barChartSvg(
      'Failover: host kill -> write accepted (ms)',
      'ms',
      [
        { label: 'detection p50', value: col((r) => r.detectionMs).p50 },
        { label: 'fencing p50', value: col((r) => r.fencingMs).p50 },
        { label: 'promotion p50', value: col((r) => r.promotionMs).p50 },
        { label: 'propagation p50', value: col((r) => r.propagationMs).p50 },
        { label: 'total p50', value: e2e.p50 },
        { label: 'total max', value: e2e.max },
      ],
      { value: 3_000, label: 'goal 3 s (p50)' },
    ),
  });
  // Agents started here are stopped with the fleet (everything under its root).
});
