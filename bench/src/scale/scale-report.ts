/** The scale simulator's output: one table with a column per step, and a chart per curve. */
import { lineChartSvg, renderTable, verdict, writeChart, type Series, type Table } from '../fleet-report.js';
import type { Step } from './options.js';
import type { ChurnResult, GrowResult, RestartResult, RestResult } from './phases.js';

/**
 * Everything one step measured. A phase's field is absent when the step ended before that phase
 * completed (a phase failed or timed out, or the run was stopped): `incomplete` says which and why,
 * and what the earlier phases measured is still written.
 */
export interface StepResult {
  step: Step;
  /** As far as it got: a step stopped while growing keeps its hosts' connect time and the creates so far. */
  grow?: Partial<GrowResult>;
  rest?: RestResult;
  snapshot?: { ms: number; routes: number; bytes: number } | { error: string };
  /** The same on a real router's gRPC channel options. */
  routerSnapshot?: { ms: number; routes: number; bytes: number } | { error: string };
  churn?: ChurnResult;
  realRouters?: { p50: number; p99: number; n: number; missed: number };
  /** The restart's marks as far as they got (a restart whose fleet never came back keeps its first marks). */
  restart?: Partial<RestartResult>;
  workersRssBytes?: number;
  watcherErrors?: string[];
  /** The 1-minute load average when each phase began and ended (the machine is shared: wall times need it beside them). */
  load: Record<string, [number, number]>;
  /** The phase the step ended in without completing it, and why. */
  incomplete?: { phase: string; reason: string };
}

const MiB = 2 ** 20;
const r1 = (v: number): number => Math.round(v * 10) / 10;

function snap(s: StepResult): { ms: number; routes: number; bytes: number } | undefined {
  return s.snapshot === undefined || 'error' in s.snapshot ? undefined : s.snapshot;
}

/** "a / b", or "-" when the phase that measures them did not complete. */
function pair(a: number | undefined, b: number | undefined): string {
  if (a === undefined && b === undefined) return '-';
  const f = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : String(r1(v)));
  return `${f(a)} / ${f(b)}`;
}

const NaN_ = Number.NaN;

/** The table: one row per measure, one column per step ("-" where the step ended before the phase). */
export function stepsTable(results: readonly StepResult[]): Table {
  const api = (s: StepResult, kind: string): string => pair(s.churn?.api[kind]?.p50, s.churn?.api[kind]?.p99);
  const load = (s: StepResult, phase: string): string => {
    const l = s.load[phase];
    return l ? `${l[0].toFixed(1)} -> ${l[1].toFixed(1)}` : '-';
  };
  const rows: Array<[string, (s: StepResult) => string | number]> = [
    ['step ended', (s) => (s.incomplete ? `INCOMPLETE in ${s.incomplete.phase}: ${s.incomplete.reason.slice(0, 70)}` : 'complete')],
    ['load average (1 min) growing', (s) => load(s, 'grow')],
    ['tenants created through the API (this step)', (s) => s.grow?.tenantsAdded ?? NaN_],
    ['tenants created through the API /s', (s) => Math.round(s.grow?.createPerSecond ?? NaN_)],
    ['create latency while growing p50 / p99 (ms)', (s) => pair(s.grow?.createLatency?.p50, s.grow?.createLatency?.p99)],
    ['placements committed /s (first create -> all placed)', (s) => Math.round(s.grow?.placementsPerSecond ?? NaN_)],
    ['tenants still NEW when creation ended', (s) => s.grow?.backlogAtCreateEnd ?? NaN_],
    ['coordinator CPU while growing (cores)', (s) => r1((s.grow?.coordinatorCores ?? NaN_) * 100) / 100],
    ['load average (1 min) at rest', (s) => load(s, 'rest')],
    ['coordinator RSS at rest (MiB)', (s) => Math.round((s.rest?.rssBytes ?? NaN_) / MiB)],
    ['coordinator peak RSS (MiB)', (s) => Math.round((s.rest?.peakRssBytes ?? NaN_) / MiB)],
    ['store on disk (MiB)', (s) => r1((s.rest?.storeBytes ?? NaN_) / MiB)],
    ['coordinator CPU at rest (cores)', (s) => Math.round((s.rest?.cores ?? NaN_) * 1000) / 1000],
    ['coordinator CPU per heartbeat at rest (µs; reports included)', (s) => r1(s.rest?.usPerHeartbeat ?? NaN_)],
    ['coordinator fsyncs per second at rest (strace)', (s) => r1(s.rest?.fsyncsPerSecond ?? NaN_)],
    ['load average (1 min) churn', (s) => load(s, 'churn')],
    ['churn: create p50 / p99 (ms)', (s) => api(s, 'create')],
    ['churn: get p50 / p99 (ms)', (s) => api(s, 'get')],
    ['churn: list (100) p50 / p99 (ms)', (s) => api(s, 'list')],
    ['churn: delete p50 / p99 (ms)', (s) => api(s, 'delete')],
    ['churn: set access p50 / p99 (ms)', (s) => api(s, 'setAccess')],
    ['churn: API calls failed', (s) => (s.churn ? Object.values(s.churn.apiFailures).reduce((n, f) => n + f.count, 0) : NaN_)],
    ['churn: coordinator CPU (cores)', (s) => r1((s.churn?.coordinatorCores ?? NaN_) * 100) / 100],
    ['route change -> applied, each watcher p50 / p99 (ms)', (s) => pair(s.churn?.propagation.p50, s.churn?.propagation.p99)],
    ['route change -> applied by all watchers p50 / p99 (ms)', (s) => pair(s.churn?.propagationAll.p50, s.churn?.propagationAll.p99)],
    ['worst watcher p99 (ms)', (s) => r1(s.churn?.worstWatcherP99 ?? NaN_)],
    ['changes timed / (watcher, change) never seen', (s) => (s.churn ? `${s.churn.changes} / ${s.churn.missing}` : '-')],
    [
      'real routers (SQLite cache) p50 / p99 (ms), changes missed',
      (s) => (s.realRouters ? `${pair(s.realRouters.p50, s.realRouters.p99)}, ${s.realRouters.missed}` : '-'),
    ],
    ['new router snapshot (ms)', (s) => r1(snap(s)?.ms ?? NaN_)],
    [
      'new router snapshot size (MiB) / routes',
      (s) => {
        const n = snap(s);
        if (n) return `${r1(n.bytes / MiB)} / ${n.routes}`;
        return s.snapshot && 'error' in s.snapshot ? `failed: ${s.snapshot.error.slice(0, 60)}` : '-';
      },
    ],
    [
      "new router snapshot on the router's channel options (ms)",
      (s) => (s.routerSnapshot === undefined ? '-' : 'error' in s.routerSnapshot ? `FAILED: ${s.routerSnapshot.error.slice(0, 70)}` : r1(s.routerSnapshot.ms)),
    ],
    ['host loss: tenants on the host', (s) => s.churn?.hostLoss.tenants ?? NaN_],
    ['host loss -> first route changed (ms, TTL + grace)', (s) => Math.round(s.churn?.hostLoss.firstChangeMs ?? NaN_)],
    [
      'host loss -> all its routes changed at every watcher (ms)',
      (s) => (s.churn ? `${Math.round(s.churn.hostLoss.allChangedMs)}${s.churn.hostLoss.complete ? '' : ' INCOMPLETE'}` : '-'),
    ],
    ['  of which first -> last change applied (ms)', (s) => Math.round(s.churn?.hostLoss.spreadMs ?? NaN_)],
    [
      'drain: tenants / moves / blocked / left after 60 s',
      (s) => {
        const d = s.churn?.drain;
        if (!d) return '-';
        return 'error' in d ? `failed: ${d.error.slice(0, 50)}` : `${d.tenants} / ${d.moves} / ${d.blocked} / ${d.leftAfter}`;
      },
    ],
    ['load average (1 min) restart', (s) => load(s, 'restart')],
    ['restart: SIGTERM -> /healthz (ms)', (s) => Math.round(s.restart?.healthzMs ?? NaN_)],
    ['restart: SIGTERM -> API serving (ms)', (s) => Math.round(s.restart?.servingMs ?? NaN_)],
    ['restart: SIGTERM -> every host and watcher back (ms)', (s) => Math.round(s.restart?.fleetBackMs ?? NaN_)],
    ['restart: new process CPU to API serving / to fleet back (s)', (s) => pair(s.restart?.servingCpuSeconds, s.restart?.fleetBackCpuSeconds)],
    ['simulator workers RSS (MiB)', (s) => Math.round((s.workersRssBytes ?? NaN_) / MiB)],
    ['goal route propagation p99 < 100 ms', (s) => (s.churn ? verdict(s.churn.propagation.p99 < 100) : '-')],
    [
      'goal API p99 < 200 ms (create, get, list)',
      (s) => (s.churn ? verdict(['create', 'get', 'list'].every((k) => (s.churn?.api[k]?.p99 ?? Number.POSITIVE_INFINITY) < 200)) : '-'),
    ],
    ['goal restart < 30 s', (s) => (s.restart?.servingMs !== undefined ? verdict(s.restart.servingMs < 30_000) : '-')],
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
      { label: 'RSS at rest', points: by((s) => (s.rest?.rssBytes ?? NaN_) / MiB) },
      { label: 'peak RSS', points: by((s) => (s.rest?.peakRssBytes ?? NaN_) / MiB) },
      { label: 'store on disk', points: by((s) => (s.rest?.storeBytes ?? NaN_) / MiB) },
    ]),
    chart('cpu', 'Coordinator CPU', 'cores', [
      { label: 'growing', points: by((s) => s.grow?.coordinatorCores ?? NaN_) },
      { label: 'churn', points: by((s) => s.churn?.coordinatorCores ?? NaN_) },
      { label: 'at rest', points: by((s) => s.rest?.cores ?? NaN_) },
    ]),
    chart(
      'heartbeat',
      'Coordinator CPU per heartbeat at rest',
      'µs',
      [{ label: 'per heartbeat', points: byHosts((s) => s.rest?.usPerHeartbeat ?? NaN_) }],
      undefined,
      'hosts',
    ),
    chart('placements', 'Creations and placements per second', '/s', [
      { label: 'created (API)', points: by((s) => s.grow?.createPerSecond ?? NaN_) },
      { label: 'placed', points: by((s) => s.grow?.placementsPerSecond ?? NaN_) },
    ]),
    chart(
      'api',
      'API latency p99 during churn',
      'ms',
      ['create', 'get', 'list', 'delete', 'setAccess'].map((k) => ({ label: k, points: by((s) => s.churn?.api[k]?.p99 ?? Number.NaN) })),
      { value: 200, label: 'goal 200 ms' },
    ),
    chart(
      'propagation',
      'Route change -> applied',
      'ms',
      [
        { label: 'each watcher p50', points: by((s) => s.churn?.propagation.p50 ?? NaN_) },
        { label: 'each watcher p99', points: by((s) => s.churn?.propagation.p99 ?? NaN_) },
        { label: 'real routers p99', points: by((s) => s.realRouters?.p99 ?? NaN_) },
      ],
      { value: 100, label: 'goal p99 100 ms' },
    ),
    chart('snapshot', "A new router's snapshot", 'ms / MiB', [
      { label: 'time (ms)', points: by((s) => snap(s)?.ms ?? Number.NaN) },
      { label: 'size (MiB)', points: by((s) => (snap(s)?.bytes ?? Number.NaN) / MiB) },
    ]),
    chart('host-loss', 'Host loss -> all its routes changed everywhere', 'ms', [
      { label: 'loss -> all changed', points: by((s) => s.churn?.hostLoss.allChangedMs ?? NaN_) },
      { label: 'first -> last applied', points: by((s) => s.churn?.hostLoss.spreadMs ?? NaN_) },
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
