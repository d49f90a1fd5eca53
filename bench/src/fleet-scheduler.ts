// Fleet benchmark: the scheduler at scale. A real coordinator process; 1,000 simulated
// hosts as fake agents on real gRPC streams in this one process; 100,000 tenants.
// Headline: placements committed per second, measured from the moment placement can start.
// Goal: at least 1,000 per second.
//
//   1. The coordinator runs with its reconciler idle (a one-hour tick); every fake host connects
//      and is cordoned.
//   2. The tenants are created through the API (bounded concurrency). Their cost, a SCRAM verifier
//      per owner, is reported apart: it is the API's rate, not the scheduler's.
//   3. The coordinator restarts on the same state with the default reconcile interval; the hosts
//      reconnect (still cordoned: nothing can be placed, the backlog waits).
//   4. Every host is uncordoned at once: placement can start. Committed = no tenant left NEW
//      (GetFleetStatus, polled); delivered = every placement arrived on its host's stream.
//
// PGS_BENCH_STORE picks the coordinator's store: sqlite (default), postgres (a PostgreSQL server the
// run starts, fsync on), or sqlite,postgres for both, one after the other, side by side in one table.
//
//   npm run bench:scheduler -w bench     (PGS_BENCH_TENANTS=100000, PGS_BENCH_HOSTS=1000, PGS_BENCH_STORE=sqlite)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { AgentControlService, RunState, TenantStatus } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { FakeAgent, type FakeAgentStats } from './fleet-fake-agent.js';
import { benchStores, poll, withFleet, type BenchFleet, type BenchStore } from './fleet-launcher.js';
import { barChartSvg, report, verdict } from './fleet-report.js';

const TENANTS = Number(process.env.PGS_BENCH_TENANTS ?? 100_000);
const HOSTS = Number(process.env.PGS_BENCH_HOSTS ?? 1_000);
const CREATE_CONCURRENCY = 64;
const ADMIN_CONCURRENCY = 100;
/** How long placement may take before the run reports what it got (PGS_BENCH_PLACE_TIMEOUT, seconds). */
const PLACE_TIMEOUT_MS = Number(process.env.PGS_BENCH_PLACE_TIMEOUT ?? 600) * 1000;
/** Streams share a few channels, as many agents behind one NAT would. */
const CHANNELS = 16;
/** Long host liveness: the benchmark measures placement, not failure detection. */
const LIVENESS = ['--log-level', 'warn', '--host-ttl', '60s', '--host-down-grace', '60s'];

/** The machine's 1-minute load average, for the table: the figures above mean little without it. */
const load = (): string => (os.loadavg()[0] ?? 0).toFixed(1);

/** Runs `work(i)` for i in 0..n-1 with at most `limit` at a time. */
async function bounded(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

/**
 * Runs an operator call, again after UNAVAILABLE or CANCELLED (bounded): on the PostgreSQL store a coordinator
 * that missed its lease renewals on a loaded machine steps down and leads again at the next epoch,
 * refusing writes in between, as any client of it would see. Retries are counted in `retried`.
 */
async function retryUnavailable<T>(call: () => Promise<T>, retried: { n: number }): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      // UNAVAILABLE: no leader right now; CANCELLED: the leader stepped down with the call in flight.
      if (![14, 1].includes((err as { code?: number }).code ?? 0) || attempt >= 100) throw err;
      retried.n++;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** How often the coordinator stepped down from leading (PostgreSQL store; 0 on SQLite, which has no lease). */
function leadershipLosses(fleet: BenchFleet): number {
  const log = path.join(fleet.root, 'coordinator.log');
  return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('"msg":"no longer leading"').length - 1 : 0;
}

/**
 * A failed run's error with its cause from the coordinator's log: the API answers an unexpected
 * failure with "internal error" only (it never leaks internals to a caller) and logs the cause, so
 * the last error the coordinator logged is what the report needs.
 */
function withCoordinatorCause(err: unknown, fleet: BenchFleet): Error {
  const message = err instanceof Error ? err.message : String(err);
  const log = path.join(fleet.root, 'coordinator.log');
  if (!fs.existsSync(log)) return new Error(message, { cause: err });
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (!line.includes('"level":"error"') && !line.includes('"level":"fatal"')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; method?: string; err?: { type?: string; message?: string } };
      const cause = [entry.method, entry.msg, entry.err ? `${entry.err.type ?? 'Error'}: ${entry.err.message ?? ''}` : undefined].filter(Boolean).join(': ');
      return new Error(`${message} (the coordinator logged: ${cause})`, { cause: err });
    } catch {
      // A line cut short (the process died mid-write): look further back.
    }
  }
  return new Error(`${message} (the coordinator logged no error)`, { cause: err });
}

/**
 * Tenants still NEW (not placed): one page of one tenant and its total, so polling stays cheap
 * for the coordinator (GetFleetStatus reads every tenant and host to build its summary).
 */
async function unplaced(fleet: BenchFleet): Promise<number> {
  const res = await fleet.client.listTenants({ status: TenantStatus.NEW, page: { pageSize: 1 } });
  return res.tenants.length === 0 ? 0 : Math.max(1, res.page?.totalSize ?? 0);
}

/**
 * The statements the coordinator sent to its store so far (writer, read), from its /metrics;
 * undefined on a store that answers in-process (SQLite has no such metric).
 */
async function storeStatements(fleet: BenchFleet): Promise<{ writer: number; read: number } | undefined> {
  const text = await fetch(`http://${fleet.http}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const of = (connection: string): number | undefined => {
    const m = new RegExp(`^pgs_coordinator_store_statements_total\\{[^}]*connection="${connection}"[^}]*\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const writer = of('writer');
  const read = of('read');
  return writer === undefined || read === undefined ? undefined : { writer, read };
}

/** One store's run: the rows of its column in the table, and its figures for the JSON result. */
interface StoreRun {
  store: BenchStore;
  rows: Array<[string, string | number]>;
  data: Record<string, unknown>;
  createPerSecond: number;
  commitRate: number;
  deliverRate: number;
}

const measure = (store: BenchStore): Promise<StoreRun> =>
  withFleet({ name: `scheduler-${store}`, block: 33, agents: 0, routers: 0, store, coordinatorArgs: [...LIVENESS, '--reconcile-interval', '1h'] }, (fleet) =>
    measureOn(store, fleet).catch((err: unknown) => {
      throw withCoordinatorCause(err, fleet);
    }),
  );

/** One store's run on its fleet: the four phases above. */
async function measureOn(store: BenchStore, fleet: BenchFleet): Promise<StoreRun> {
  console.log(`--- store: ${store}`);
  const retried = { n: 0 };
  const stats: FakeAgentStats = {
    placementsReceived: 0,
    lastPlacementAt: 0,
    welcomed: 0,
    connected: 0,
    streamFailures: 0,
    failureSamples: [],
    failureReasons: {},
  };
  const channels = Array.from({ length: CHANNELS }, () => createClient(AgentControlService, fleet.grpc, credentials.createInsecure()));
  const agents = Array.from(
    { length: HOSTS },
    (_, i) => new FakeAgent(channels[i % CHANNELS] as (typeof channels)[number], `sim${i}`, `127.1.${i >> 8}.${i & 255}`, `z${i % 3}`, stats),
  );
  try {
    // Phase 1: every host known and cordoned.
    const connectStart = performance.now();
    for (const a of agents) a.start();
    await poll(`${HOSTS} hosts connected`, async () => stats.connected >= HOSTS, 5 * 60_000, 50);
    const firstConnectMs = performance.now() - connectStart;
    await bounded(HOSTS, ADMIN_CONCURRENCY, async (i) => {
      await retryUnavailable(() => fleet.client.cordonHost({ id: `sim${i}` }), retried);
    });
    console.log(`${HOSTS} fake hosts connected in ${Math.round(firstConnectMs)} ms and cordoned`);

    // Phase 2: the backlog, through the API.
    const createStatementsBefore = await storeStatements(fleet);
    const createLoad = [load()];
    const createStart = performance.now();
    await bounded(TENANTS, CREATE_CONCURRENCY, async (i) => {
      await retryUnavailable(
        () =>
          fleet.client.createTenant({
            id: `t${i}`,
            ownerPassword: 'bench-owner-secret',
            spec: { resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 }, nodes: 1, runState: RunState.RUNNING },
          }),
        retried,
      ).catch((err: unknown) => {
        // A create whose first attempt committed but whose answer was lost is there already.
        if ((err as { code?: number }).code !== 6) throw err;
      });
      if (i > 0 && i % 10_000 === 0)
        console.log(`  created ${i.toLocaleString('en')} tenants (${Math.round(i / ((performance.now() - createStart) / 1000))}/s)`);
    });
    const createMs = performance.now() - createStart;
    const createStatementsAfter = await storeStatements(fleet);
    createLoad.push(load());
    // Per tenant created (the scheduler's wake-ups on each commit included: every host is cordoned, so they place nothing).
    const perCreate =
      createStatementsBefore && createStatementsAfter
        ? `${((createStatementsAfter.writer - createStatementsBefore.writer) / TENANTS).toFixed(2)} / ${((createStatementsAfter.read - createStatementsBefore.read) / TENANTS).toFixed(2)}`
        : '-';
    console.log(
      `created ${TENANTS.toLocaleString('en')} tenants in ${(createMs / 1000).toFixed(1)} s; store statements per create (writer / read): ${perCreate}`,
    );

    // Phase 3: the coordinator with its real reconcile loop; the cordoned hosts reconnect.
    const failuresBefore = stats.streamFailures;
    const reasonsBefore = { ...stats.failureReasons };
    const restartStart = performance.now();
    await fleet.restartCoordinator(LIVENESS);
    await poll(`${HOSTS} hosts reconnected`, async () => stats.connected >= HOSTS, 10 * 60_000, 50);
    const reconnectMs = performance.now() - restartStart;
    const reconnectFailures = stats.streamFailures - failuresBefore;
    const reconnectReasons = Object.fromEntries(
      Object.entries(stats.failureReasons)
        .map(([k, v]) => [k, v - (reasonsBefore[k] ?? 0)])
        .filter(([, v]) => (v as number) > 0),
    );
    if ((await retryUnavailable(() => unplaced(fleet), retried)) !== TENANTS) throw new Error('tenants were placed while every host was cordoned');
    console.log(
      `coordinator restarted; ${HOSTS} hosts back in ${Math.round(reconnectMs)} ms (${reconnectFailures} stream failures: ${JSON.stringify(reconnectReasons)}); uncordoning`,
    );

    // Phase 4: placement can start.
    const statementsBefore = await storeStatements(fleet);
    const placeLoad = [load()];
    const placeStart = performance.now();
    let committedAt = Number.NaN;
    const uncordon = bounded(HOSTS, ADMIN_CONCURRENCY, async (i) => {
      await retryUnavailable(() => fleet.client.uncordonHost({ id: `sim${i}` }), retried);
    }).then(
      () => performance.now() - placeStart,
      () => Number.NaN,
    );
    // A coordinator that cannot keep up must still give a number: after the deadline the rate is
    // what was committed so far over the time spent.
    let committed = 0;
    const committedOrDeadline = poll(
      `${TENANTS} placements committed`,
      async () => {
        committed = TENANTS - (await unplaced(fleet));
        if (committed === TENANTS && Number.isNaN(committedAt)) committedAt = performance.now();
        return committed === TENANTS;
      },
      PLACE_TIMEOUT_MS,
      100,
    ).catch((err: unknown) => console.log(`placement incomplete: ${(err as Error).message}`));
    await committedOrDeadline;
    const complete = !Number.isNaN(committedAt);
    if (!complete) committedAt = performance.now();
    const uncordonMs = complete ? await uncordon : Number.NaN;
    if (complete)
      await poll(`${TENANTS} placements delivered`, async () => stats.placementsReceived >= TENANTS, PLACE_TIMEOUT_MS, 20).catch((err: unknown) =>
        console.log(`delivery incomplete: ${(err as Error).message}`),
      );
    const statementsAfter = await storeStatements(fleet);
    placeLoad.push(load());
    // Per placement committed, while the backlog was placed (the uncordons and the polling included).
    const perPlacement =
      statementsBefore && statementsAfter && committed > 0
        ? `${((statementsAfter.writer - statementsBefore.writer) / committed).toFixed(1)} / ${((statementsAfter.read - statementsBefore.read) / committed).toFixed(1)}`
        : '-';
    const commitMs = committedAt - placeStart;
    const deliverMs = (stats.lastPlacementAt || performance.now()) - placeStart;
    const commitRate = committed / (commitMs / 1000);
    const deliverRate = stats.placementsReceived / (deliverMs / 1000);
    const status = await fleet.client.getFleetStatus({}, { timeoutMs: 60_000 }).catch(() => undefined);

    return {
      store,
      rows: [
        ['tenants created (API, SCRAM per owner) /s', Math.round(TENANTS / (createMs / 1000))],
        ['store statements per tenant created (writer / read)', perCreate],
        ['load average (1 min) when the creates began → ended', createLoad.join(' → ')],
        [`${HOSTS} hosts reconnected after restart with the backlog (ms)`, Math.round(reconnectMs)],
        ['agent streams failed and retried (reconnect)', reconnectFailures],
        ...Object.entries(reconnectReasons).map(([k, v]) => [`  of which "${k.slice(0, 60)}"`, v] as [string, number]),
        [`uncordon of ${HOSTS} hosts done (ms)`, Math.round(uncordonMs)],
        // One label for every store (the table matches rows by label): an incomplete run says so in its value.
        [
          'backlog committed, from first uncordon (s)',
          complete ? Math.round(commitMs) / 1000 : `INCOMPLETE: ${committed.toLocaleString('en')} in ${Math.round(commitMs) / 1000}`,
        ],
        ['placements committed /s', Math.round(commitRate)],
        ["backlog delivered on the agents' streams (s)", Math.round(deliverMs) / 1000],
        ['placements delivered /s', Math.round(deliverRate)],
        ['goal >= 1,000 committed /s', verdict(commitRate >= 1000)],
        ['store statements per placement committed (writer / read)', perPlacement],
        ['load average (1 min) when placement began → ended', placeLoad.join(' → ')],
        ['operator calls retried after UNAVAILABLE/CANCELLED', retried.n],
        ['times the coordinator stepped down (lease lost)', leadershipLosses(fleet)],
        [
          'tenants by status after',
          status
            ? Object.entries(status.tenantsByStatus)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')
            : '(fleet status did not answer)',
        ],
      ] as Array<[string, string | number]>,
      data: {
        tenants: TENANTS,
        hosts: HOSTS,
        firstConnectMs,
        createMs,
        createPerSecond: TENANTS / (createMs / 1000),
        statementsPerCreate: perCreate,
        reconnectMs,
        reconnectFailures,
        failureReasons: stats.failureReasons,
        reconnectReasons,
        uncordonMs,
        complete,
        committed,
        commitMs,
        placementsCommittedPerSecond: commitRate,
        deliverMs,
        placementsDeliveredPerSecond: deliverRate,
        statementsPerPlacement: perPlacement,
        tenantsByStatus: status?.tenantsByStatus ?? {},
        retriedAfterUnavailable: retried.n,
        leadershipLosses: leadershipLosses(fleet),
      },
      createPerSecond: TENANTS / (createMs / 1000),
      commitRate,
      deliverRate,
    };
  } finally {
    for (const a of agents) a.stop();
    for (const c of channels) c.close();
  }
}

// A store whose run fails still gets its column (the error), so the other store's figures are kept.
const runs: StoreRun[] = [];
for (const store of benchStores()) {
  const run = await measure(store).catch((err: unknown): StoreRun => {
    const message = (err as Error).message.split('\n')[0] ?? '';
    console.log(`store ${store}: the run failed: ${message}`);
    return { store, rows: [], data: { error: message }, createPerSecond: 0, commitRate: 0, deliverRate: 0 };
  });
  console.log(`--- store ${store} done: ${JSON.stringify(run.data)}`);
  runs.push(run);
}

/**
 * Every run's row labels, each once, in run order: a row only one store has (a stream failure
 * reason) goes after the row it follows in that store, so the stores' values stay on their own
 * rows (matching rows by position shifted a store's column by one).
 */
function labelsOf(all: StoreRun[]): string[] {
  const labels: string[] = [];
  for (const run of all) {
    let at = 0;
    for (const [label] of run.rows) {
      const found = labels.indexOf(label);
      if (found >= 0) at = found + 1;
      else labels.splice(at++, 0, label);
    }
  }
  return labels;
}
report('fleet-scheduler', {
  tables: [
    {
      title: `Scheduler: ${TENANTS.toLocaleString('en')} tenants onto ${HOSTS.toLocaleString('en')} simulated hosts (fake agents on real gRPC streams), by store`,
      columns: ['measure', ...runs.map((r) => `${r.store} store`)],
      rows: [
        ...labelsOf(runs).map((label) => [label, ...runs.map((r) => r.rows.find(([l]) => l === label)?.[1] ?? '')]),
        ...(runs.some((r) => r.rows.length === 0) ? [['run failed', ...runs.map((r) => (r.rows.length === 0 ? String(r.data.error) : ''))]] : []),
      ],
    },
  ],
  data: { tenants: TENANTS, hosts: HOSTS, stores: Object.fromEntries(runs.map((r) => [r.store, r.data])) },
  chart: barChartSvg(
    'Scheduler throughput (per second)',
    '/s',
    runs.flatMap((r) => [
      { label: `${r.store}: creates (API)`, value: r.createPerSecond },
      { label: `${r.store}: committed`, value: r.commitRate },
      { label: `${r.store}: delivered`, value: r.deliverRate },
    ]),
    { value: 1000, label: 'goal 1,000/s' },
  ),
});
