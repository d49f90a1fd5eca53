// The coordinator's cost at rest and in a restart, builds side by side, on a store filled directly
// (no hour of creates through the API on a loaded machine): each run copies the store, starts the
// build on it, connects the fake hosts (heartbeats every second, a full instance report every
// --report-interval as a real agent), then measures what load does not distort: CPU per host per
// second at rest, fsyncs per second at rest (strace), and in a restart the new process's CPU until
// every host is back and 10 s later, the desired sets the restarted build sent, and the longest
// event-loop stall at rest and in the restart from when the restarted build serves (read from
// /metrics every second; a wall-time figure, so it carries the machine's load, printed beside it). Builds alternate, round after round.
//
//   PGS_BENCH_KEEP_STORE=/tmp/s npm run bench:restart -w @pgs/coordinator -- 10000 200   (the store)
//   npm run bench:rest-cost -w bench -- /tmp/s 200 <old main.js>,<new main.js> [rounds]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentWorkerReply, AgentWorkerRequest } from './ipc.js';
import { byLabel, LoopStallSampler, metricsText, sample } from './coordinator-metrics.js';
import { cpuSeconds, cpuWindow, fsyncsOver } from './proc-stats.js';
import { Worker } from './workers.js';

const [storeDir, hostsArg, buildsArg, roundsArg, tenantsArg] = process.argv.slice(2);
const hosts = Number(hostsArg);
const rounds = Number(roundsArg ?? 2);
const tenants = Number(tenantsArg ?? 0);
if (
  !storeDir ||
  !fs.existsSync(path.join(storeDir, 'coordinator.db')) ||
  !Number.isInteger(hosts) ||
  hosts < 1 ||
  !buildsArg ||
  !(rounds >= 1) ||
  !Number.isInteger(tenants) ||
  tenants < 0
)
  throw new Error('usage: rest-cost <store dir (with coordinator.db)> <hosts> <main.js>[,<main.js>...] [rounds] [tenants in the store]');
// PGS_BENCH_FIRST_START_ONLY=1: measure the first start only (no rest window, no restart).
const firstStartOnly = process.env.PGS_BENCH_FIRST_START_ONLY === '1';
// PGS_BENCH_STREAMS_PER_CHANNEL: fake hosts sharing one gRPC connection (1 = a connection each, as real agents; before
// session 15 every fake host of the run shared one, whatever this said: grpc-js's global subchannel pool).
// Shared, one host's set left unread holds the connection's flow-control window for all the others.
const streamsPerChannel = Number(process.env.PGS_BENCH_STREAMS_PER_CHANNEL ?? 1);
if (!(Number.isInteger(streamsPerChannel) && streamsPerChannel >= 1)) throw new Error('PGS_BENCH_STREAMS_PER_CHANNEL must be a positive whole number');
// PGS_BENCH_FULL_REPORT_MS: how often a fake host reports an unchanged instance again, as the agent's
// --full-report-interval (default 15000); 5000, the report interval, reports every instance every round
// (what agents did before report-throttle.ts).
const fullReportIntervalMs = Number(process.env.PGS_BENCH_FULL_REPORT_MS ?? 15_000);
if (!(Number.isInteger(fullReportIntervalMs) && fullReportIntervalMs >= 1)) throw new Error('PGS_BENCH_FULL_REPORT_MS must be a positive whole number of ms');
// How long a first start may take to settle before the run records it as not settled.
const settleTimeoutMs = Number(process.env.PGS_BENCH_SETTLE_TIMEOUT_MS ?? 600_000);
const builds = buildsArg.split(',').map((b) => path.resolve(b));
const ip = `127.${process.env.PGS_TEST_NET ?? '0'}.98.1`;
const port = 30_000 + Math.floor(Math.random() * 20_000);
const http = `${ip}:${port}`;
const grpc = `${ip}:${port + 1}`;

async function health(): Promise<{ agents: number } | undefined> {
  try {
    const r = await fetch(`http://${http}/healthz`);
    return r.ok ? ((await r.json()) as { agents: number }) : undefined;
  } catch {
    return undefined;
  }
}

/** Host state transitions the coordinator made since it started, by new state, and the desired sets it sent, by kind. */
async function counters(): Promise<{ transitions: Record<string, number>; desired: Record<string, number>; commits: number | undefined }> {
  const text = await metricsText(http);
  return {
    transitions: byLabel(text, 'pgs_coordinator_host_transitions_total', 'to'),
    desired: byLabel(text, 'pgs_coordinator_desired_sets_sent_total', 'kind'),
    // Builds before the counter have none.
    commits: sample(text, 'pgs_coordinator_store_durable_commits_total'),
  };
}

async function until(what: string, f: () => Promise<boolean>, ms = 600_000, everyMs = 50): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await f()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function startCoordinator(main: string, dataDir: string): ChildProcess {
  const args = ['--grpc-listen', grpc, '--http-listen', http, '--data-dir', dataDir, '--insecure', '--log-level', process.env.PGS_BENCH_LOG_LEVEL ?? 'warn'];
  // PGS_BENCH_NODE_ARGS: node flags for the coordinator, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.PGS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // PGS_BENCH_LOG_DIR: the coordinators' logs (warnings and errors; PGS_BENCH_LOG_LEVEL for more) go there.
  const logDir = process.env.PGS_BENCH_LOG_DIR;
  const out = logDir ? fs.openSync(path.join(logDir, `coordinator-${Date.now()}.log`), 'a') : 'ignore';
  return spawn(process.execPath, [...nodeArgs, main, ...args], { stdio: ['ignore', out, 'inherit'] });
}

async function stopCoordinator(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The first start on the store: every fake host holds nothing (generation 0), so each needs its
 * full desired set. Settled = every host connected and every tenant's instance delivered to its
 * host (`tenants`; 0 = connected only), then 10 s more to see whether anything flaps after.
 */
interface FirstStart {
  /** ms from the coordinator's spawn until settled; undefined when it did not settle in time. */
  settledMs: number | undefined;
  /** CPU seconds of the coordinator until settled (or the deadline) and 10 s later. */
  cpuSettled: number;
  cpuAfter: number;
  flaps: Record<string, number>;
  desired: Record<string, number>;
  /** Store commits that wrote (each an fsync) until 10 s after settling; undefined for a build that does not count them. */
  commits: number | undefined;
  /** The longest event-loop stall from the first read of /metrics until 10 s after settling (ms). */
  stallMs: number;
  streamFailures: number;
  failureReasons: Record<string, number>;
  /** The fake hosts' worker's longest event-loop stall (ms): heartbeats it sent late. */
  agentsStallMs: number;
  /** What was delivered when it settled or gave up: instances received, hosts connected. */
  placements: number;
  connected: number;
}

async function firstStart(
  coordinator: ChildProcess,
  agents: Worker<AgentWorkerRequest, AgentWorkerReply>,
  t0: number,
  stalls: LoopStallSampler,
): Promise<FirstStart> {
  let placements = 0;
  let connected = 0;
  let lastLog = 0;
  const settled = await until(
    'the first start to settle',
    async () => {
      const stats = await agents.ask({ type: 'stats' });
      if (stats.type !== 'stats') return false;
      placements = stats.placements;
      connected = stats.connected;
      const elapsed = performance.now() - t0;
      if (elapsed - lastLog >= 30_000) {
        lastLog = elapsed;
        const c = await counters();
        console.error(
          `  first start ${Math.round(elapsed / 1000)} s: ${connected}/${hosts} hosts connected, ${placements}/${tenants} instances delivered, transitions ${JSON.stringify(c.transitions)}, sets ${JSON.stringify(c.desired)}, load ${os.loadavg()[0]?.toFixed(1)}`,
        );
      }
      return connected >= hosts && ((await health())?.agents ?? 0) >= hosts && placements >= tenants;
    },
    settleTimeoutMs,
    1000,
  ).catch(() => undefined);
  const pid = coordinator.pid as number;
  const cpuSettled = cpuSeconds(pid);
  await sleep(10_000);
  const stats = await agents.ask({ type: 'stats' });
  const { transitions: flaps, desired, commits } = await counters();
  return {
    commits,
    settledMs: settled === undefined ? undefined : Math.round(performance.now() - t0 - 10_000),
    cpuSettled,
    cpuAfter: cpuSeconds(pid),
    flaps,
    desired,
    stallMs: await stalls.stop(),
    streamFailures: stats.type === 'stats' ? stats.streamFailures : -1,
    failureReasons: stats.type === 'stats' ? stats.failureReasons : {},
    agentsStallMs: stats.type === 'stats' ? stats.loopStallMaxMs : -1,
    placements,
    connected,
  };
}

interface Run {
  build: string;
  first: FirstStart;
  /** The rest window and the restart (absent with PGS_BENCH_FIRST_START_ONLY). */
  restart?: Rest;
}

interface Rest {
  usPerHostSecond: number;
  restCores: number;
  fsyncsPerSecond: number | undefined;
  backMs: number;
  backCpu: number;
  settledCpu: number;
  /** Host state transitions of the restarted coordinator until 10 s after every host was back. */
  flaps: Record<string, number>;
  /** Desired sets the restarted coordinator sent until then, by kind (full, delta, confirm). */
  desired: Record<string, number>;
  /** Store commits that wrote, of the restarted coordinator until then (each an fsync). */
  commits: number | undefined;
  /** The longest event-loop stall at rest and from the restart until 10 s after every host was back (ms). */
  restStallMs: number;
  restartStallMs: number;
  /** Agent streams that failed over the whole run (most in the restart). */
  streamFailures: number;
}

async function run(main: string): Promise<Run> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-rest-cost-'));
  fs.cpSync(storeDir as string, dataDir, { recursive: true });
  const t0 = performance.now();
  let coordinator = startCoordinator(main, dataDir);
  const firstStalls = new LoopStallSampler(http);
  firstStalls.start();
  const agents = new Worker<AgentWorkerRequest, AgentWorkerReply>('agents', 'agent-worker.ts', {
    grpc,
    from: 0,
    to: hosts,
    channels: Math.max(1, Math.ceil(hosts / streamsPerChannel)),
    reportIntervalMs: 5000,
    fullReportIntervalMs,
  });
  try {
    await until('the coordinator', async () => (await health()) !== undefined);
    const first = await firstStart(coordinator, agents, t0, firstStalls);
    if (firstStartOnly) return { build: main, first };
    await until('every host connected', async () => ((await health())?.agents ?? 0) >= hosts);
    // The first full reports applied.
    await sleep(2_000);
    const pid = coordinator.pid as number;
    const cpu = cpuWindow(pid);
    const stalls = new LoopStallSampler(http);
    stalls.start();
    await sleep(20_000);
    const u = cpu();
    const restStallMs = await stalls.stop();
    const fsyncs = await fsyncsOver(pid, 10_000);
    // A restart: SIGTERM, the same build again on the same store, the hosts reconnecting.
    await stopCoordinator(coordinator);
    const t1 = performance.now();
    coordinator = startCoordinator(main, dataDir);
    stalls.start();
    await until('the coordinator again', async () => (await health()) !== undefined);
    await until('every host back', async () => ((await health())?.agents ?? 0) >= hosts);
    const backMs = performance.now() - t1;
    const backCpu = cpuSeconds(coordinator.pid as number);
    await sleep(10_000);
    const stats = await agents.ask({ type: 'stats' });
    const { transitions: flaps, desired, commits } = await counters();
    const restartStallMs = await stalls.stop();
    return {
      build: main,
      first,
      restart: {
        usPerHostSecond: (u.cpuSeconds * 1e6) / (hosts * u.seconds),
        restCores: u.cores,
        fsyncsPerSecond: fsyncs === undefined ? undefined : fsyncs / 10,
        backMs,
        backCpu,
        settledCpu: cpuSeconds(coordinator.pid as number),
        flaps,
        desired,
        commits,
        restStallMs,
        restartStallMs,
        streamFailures: stats.type === 'stats' ? stats.streamFailures : -1,
      },
    };
  } finally {
    await agents.stop();
    await stopCoordinator(coordinator);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

console.log(
  `rest-cost: ${hosts} fake hosts on ${storeDir}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(
  [
    'build',
    'first start: ms to settled (every host connected, every instance delivered)',
    'CPU s to settled / 10 s later',
    'host transitions in the first start (to UNREACHABLE/DOWN/READY)',
    'desired sets (full/delta/confirm)',
    'store commits that wrote (fsyncs)',
    'longest loop stall ms (coordinator / fake hosts)',
    'failed agent streams',
    'load average',
  ].join('\t'),
);
if (!firstStartOnly)
  console.log(
    [
      'build',
      'CPU µs per host per s at rest',
      'cores at rest',
      'fsyncs/s at rest',
      'restart: ms to every host back',
      'CPU s to hosts back',
      'CPU s 10 s later',
      'host transitions after restart (to UNREACHABLE/DOWN/READY)',
      'desired sets after restart (full/delta/confirm)',
      'store commits that wrote after restart (fsyncs)',
      'longest loop stall ms at rest / in restart',
      'failed agent streams',
      'load average',
    ].join('\t'),
  );
const transitions = (flaps: Record<string, number>): string => ['UNREACHABLE', 'DOWN', 'READY'].map((s) => flaps[s] ?? 0).join('/');
const sets = (desired: Record<string, number>): string => ['full', 'delta', 'confirm'].map((k) => desired[k] ?? 0).join('/');
for (let round = 1; round <= rounds; round++) {
  for (const main of builds) {
    const { first: f, restart: r } = await run(main);
    console.log(
      [
        `first start ${main}`,
        f.settledMs ?? `not settled in ${settleTimeoutMs} ms (${f.connected}/${hosts} connected, ${f.placements}/${tenants} instances)`,
        `${f.cpuSettled.toFixed(2)} / ${f.cpuAfter.toFixed(2)}`,
        transitions(f.flaps),
        sets(f.desired),
        f.commits ?? '-',
        `${f.stallMs} / ${f.agentsStallMs}`,
        f.streamFailures,
        os.loadavg()[0]?.toFixed(1),
      ].join('\t'),
    );
    if (f.streamFailures > 0) console.log(`  failed agent streams by reason: ${JSON.stringify(f.failureReasons)}`);
    if (!r) continue;
    console.log(
      [
        main,
        r.usPerHostSecond.toFixed(0),
        r.restCores.toFixed(3),
        r.fsyncsPerSecond?.toFixed(1) ?? '-',
        Math.round(r.backMs),
        r.backCpu.toFixed(2),
        r.settledCpu.toFixed(2),
        transitions(r.flaps),
        sets(r.desired),
        r.commits ?? '-',
        `${r.restStallMs} / ${r.restartStallMs}`,
        r.streamFailures,
        os.loadavg()[0]?.toFixed(1),
      ].join('\t'),
    );
  }
}
console.log(
  `load average at the end ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
