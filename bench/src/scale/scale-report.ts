/** The scale simulator's output: one table with a column per step, and a chart per curve. */
import { lineChartSvg, renderTable, verdict, writeChart, type Series, type Table } from '../fleet-report.js';
import type { Step } from './options.js';
import type { ChurnResult, GrowResult, RestartResult, RestResult } from './phases.js';

/** Everything one step measured. */
export interface StepResult {
  step: Step;
  grow: GrowResult;
  rest: RestResult;
  snapshot: { ms: number; routes: number; bytes: number } | { error: string };
  /** The same on a real router's gRPC channel options. */
  routerSnapshot: { ms: number; routes: number; bytes: number } | { error: string };
  churn: ChurnResult;
  realRouters: { p50: number; p99: number; n: number; missed: number };
  restart?: RestartResult;
  workersRssBytes: number;
  watcherErrors: string[];
}

const MiB = 2 ** 20;
const r1 = (v: number): number => Math.round(v * 10) / 10;

function snap(s: StepResult): { ms: number; routes: number; bytes: number } | undefined {
  return 'error' in s.snapshot ? undefined : s.snapshot;
}

/** The table: one row per measure, one column per step. */
export function stepsTable(results: readonly StepResult[]): Table {
  const api =
    (kind: string, p: 'p50' | 'p99') =>
    (s: StepResult): number =>
      r1(s.churn.api[kind]?.[p] ?? Number.NaN);
  const rows: Array<[string, (s: StepResult) => string | number]> = [
    ['tenants created through the API /s', (s) => Math.round(s.grow.createPerSecond)],
    ['create latency while growing p50 / p99 (ms)', (s) => `${r1(s.grow.createLatency.p50)} / ${r1(s.grow.createLatency.p99)}`],
    ['placements committed /s (first create -> all placed)', (s) => Math.round(s.grow.placementsPerSecond)],
    ['tenants still NEW when creation ended', (s) => s.grow.backlogAtCreateEnd],
    ['coordinator CPU while growing (cores)', (s) => r1(s.grow.coordinatorCores * 100) / 100],
    ['coordinator RSS at rest (MiB)', (s) => Math.round(s.rest.rssBytes / MiB)],
    ['coordinator peak RSS (MiB)', (s) => Math.round(s.rest.peakRssBytes / MiB)],
    ['store on disk (MiB)', (s) => r1(s.rest.storeBytes / MiB)],
    ['coordinator CPU at rest (cores)', (s) => Math.round(s.rest.cores * 1000) / 1000],
    ['coordinator CPU per heartbeat at rest (µs; reports included)', (s) => r1(s.rest.usPerHeartbeat)],
    ['coordinator fsyncs per second at rest (strace)', (s) => (s.rest.fsyncsPerSecond === undefined ? '-' : r1(s.rest.fsyncsPerSecond))],
    ['churn: create p50 / p99 (ms)', (s) => `${api('create', 'p50')(s)} / ${api('create', 'p99')(s)}`],
    ['churn: get p50 / p99 (ms)', (s) => `${api('get', 'p50')(s)} / ${api('get', 'p99')(s)}`],
    ['churn: list (100) p50 / p99 (ms)', (s) => `${api('list', 'p50')(s)} / ${api('list', 'p99')(s)}`],
    ['churn: delete p50 / p99 (ms)', (s) => `${api('delete', 'p50')(s)} / ${api('delete', 'p99')(s)}`],
    ['churn: set access p50 / p99 (ms)', (s) => `${api('setAccess', 'p50')(s)} / ${api('setAccess', 'p99')(s)}`],
    ['churn: API calls failed', (s) => Object.values(s.churn.apiFailures).reduce((n, f) => n + f.count, 0)],
    ['churn: coordinator CPU (cores)', (s) => r1(s.churn.coordinatorCores * 100) / 100],
    ['route change -> applied, each watcher p50 / p99 (ms)', (s) => `${r1(s.churn.propagation.p50)} / ${r1(s.churn.propagation.p99)}`],
    ['route change -> applied by all watchers p50 / p99 (ms)', (s) => `${r1(s.churn.propagationAll.p50)} / ${r1(s.churn.propagationAll.p99)}`],
    ['worst watcher p99 (ms)', (s) => r1(s.churn.worstWatcherP99)],
    ['changes timed / (watcher, change) never seen', (s) => `${s.churn.changes} / ${s.churn.missing}`],
    ['real routers (SQLite cache) p50 / p99 (ms), changes missed', (s) => `${r1(s.realRouters.p50)} / ${r1(s.realRouters.p99)}, ${s.realRouters.missed}`],
    ['new router snapshot (ms)', (s) => r1(snap(s)?.ms ?? Number.NaN)],
    [
      'new router snapshot size (MiB) / routes',
      (s) => (snap(s) ? `${r1((snap(s)?.bytes ?? 0) / MiB)} / ${snap(s)?.routes}` : `failed: ${'error' in s.snapshot ? s.snapshot.error.slice(0, 60) : ''}`),
    ],
    [
      "new router snapshot on the router's channel options (ms)",
      (s) => ('error' in s.routerSnapshot ? `FAILED: ${s.routerSnapshot.error.slice(0, 70)}` : r1(s.routerSnapshot.ms)),
    ],
    ['host loss: tenants on the host', (s) => s.churn.hostLoss.tenants],
    ['host loss -> first route changed (ms, TTL + grace)', (s) => Math.round(s.churn.hostLoss.firstChangeMs)],
    [
      'host loss -> all its routes changed at every watcher (ms)',
      (s) => `${Math.round(s.churn.hostLoss.allChangedMs)}${s.churn.hostLoss.complete ? '' : ' INCOMPLETE'}`,
    ],
    ['  of which first -> last change applied (ms)', (s) => Math.round(s.churn.hostLoss.spreadMs)],
    [
      'drain: tenants / moves / blocked / left after 60 s',
      (s) =>
        'error' in s.churn.drain
          ? `failed: ${s.churn.drain.error.slice(0, 50)}`
          : `${s.churn.drain.tenants} / ${s.churn.drain.moves} / ${s.churn.drain.blocked} / ${s.churn.drain.leftAfter}`,
    ],
    ['restart: SIGTERM -> /healthz (ms)', (s) => Math.round(s.restart?.healthzMs ?? Number.NaN)],
    ['restart: SIGTERM -> API serving (ms)', (s) => Math.round(s.restart?.servingMs ?? Number.NaN)],
    ['restart: SIGTERM -> every host and watcher back (ms)', (s) => Math.round(s.restart?.fleetBackMs ?? Number.NaN)],
    [
      'restart: new process CPU to API serving / to fleet back (s)',
      (s) => (s.restart ? `${r1(s.restart.servingCpuSeconds)} / ${r1(s.restart.fleetBackCpuSeconds)}` : '-'),
    ],
    ['simulator workers RSS (MiB)', (s) => Math.round(s.workersRssBytes / MiB)],
    ['goal route propagation p99 < 100 ms', (s) => verdict(s.churn.propagation.p99 < 100)],
    [
      'goal API p99 < 200 ms (create, get, list)',
      (s) => verdict(['create', 'get', 'list'].every((k) => (s.churn.api[k]?.p99 ?? Number.POSITIVE_INFINITY) < 200)),
    ],
    ['goal restart < 30 s', (s) => (s.restart ? verdict(s.restart.servingMs < 30_000) : '-')],
  ];
  return {
    title: 'Scale simulator: fake hosts on real gRPC streams, route watchers, the real coordinator',
    columns: ['measure', ...results.map((s) => `${s.step.tenants.toLocaleString('en')} t / ${s.step.hosts.toLocaleString('en')} h`)],
    rows: rows.map(([label, f]) => [label, ...results.map(f)]),
  };
}

/** A chart per curve into bench/results/scale-*.svg; returns the files written. */
export function writeCharts(name: string, results: readonly StepResult[]): string[] {
  const by = (f: (s: StepResult) => number): Array<[number, number]> => results.map((s) => [s.step.tenants, f(s)]);
  const byHosts = (f: (s: StepResult) => number): Array<[number, number]> => results.map((s) => [s.step.hosts, f(s)]);
  const chart = (file: string, title: string, unit: string, series: Series[], goal?: { value: number; label: string }, x = 'tenants'): string =>
    writeChart(`${name}-${file}`, lineChartSvg(title, x, unit, series, goal));
  return [
    chart('memory', 'Coordinator memory and store size', 'MiB', [
      { label: 'RSS at rest', points: by((s) => s.rest.rssBytes / MiB) },
      { label: 'peak RSS', points: by((s) => s.rest.peakRssBytes / MiB) },
      { label: 'store on disk', points: by((s) => s.rest.storeBytes / MiB) },
    ]),
    chart('cpu', 'Coordinator CPU', 'cores', [
      { label: 'growing', points: by((s) => s.grow.coordinatorCores) },
      { label: 'churn', points: by((s) => s.churn.coordinatorCores) },
      { label: 'at rest', points: by((s) => s.rest.cores) },
    ]),
    chart(
      'heartbeat',
      'Coordinator CPU per heartbeat at rest',
      'µs',
      [{ label: 'per heartbeat', points: byHosts((s) => s.rest.usPerHeartbeat) }],
      undefined,
      'hosts',
    ),
    chart('placements', 'Creations and placements per second', '/s', [
      { label: 'created (API)', points: by((s) => s.grow.createPerSecond) },
      { label: 'placed', points: by((s) => s.grow.placementsPerSecond) },
    ]),
    chart(
      'api',
      'API latency p99 during churn',
      'ms',
      ['create', 'get', 'list', 'delete', 'setAccess'].map((k) => ({ label: k, points: by((s) => s.churn.api[k]?.p99 ?? Number.NaN) })),
      { value: 200, label: 'goal 200 ms' },
    ),
    chart(
      'propagation',
      'Route change -> applied',
      'ms',
      [
        { label: 'each watcher p50', points: by((s) => s.churn.propagation.p50) },
        { label: 'each watcher p99', points: by((s) => s.churn.propagation.p99) },
        { label: 'real routers p99', points: by((s) => s.realRouters.p99) },
      ],
      { value: 100, label: 'goal p99 100 ms' },
    ),
    chart('snapshot', "A new router's snapshot", 'ms / MiB', [
      { label: 'time (ms)', points: by((s) => snap(s)?.ms ?? Number.NaN) },
      { label: 'size (MiB)', points: by((s) => (snap(s)?.bytes ?? Number.NaN) / MiB) },
    ]),
    chart('host-loss', 'Host loss -> all its routes changed everywhere', 'ms', [
      { label: 'loss -> all changed', points: by((s) => s.churn.hostLoss.allChangedMs) },
      { label: 'first -> last applied', points: by((s) => s.churn.hostLoss.spreadMs) },
    ]),
    chart(
      'restart',
      'Coordinator restart',
      'ms',
      [
        { label: 'to API serving', points: by((s) => s.restart?.servingMs ?? Number.NaN) },
        { label: 'to fleet back', points: by((s) => s.restart?.fleetBackMs ?? Number.NaN) },
      ],
      { value: 30_000, label: 'goal 30 s' },
    ),
  ];
}

/** Prints the table (every step so far). */
export function printSteps(results: readonly StepResult[]): void {
  console.log(renderTable(stepsTable(results)));
}
