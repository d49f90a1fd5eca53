/**
 * The simulated part of the scale fleet: fake hosts and route watchers in worker processes, grown
 * step by step, asked for their counters, and told to lose and return hosts.
 */
import type { AgentWorkerReply, AgentWorkerRequest, WatcherWorkerReply, WatcherWorkerRequest } from './ipc.js';
import type { ScaleOptions } from './options.js';
import { Worker } from './workers.js';

type AgentWorker = Worker<AgentWorkerRequest, AgentWorkerReply>;
type WatcherWorker = Worker<WatcherWorkerRequest, WatcherWorkerReply>;

/** Counters summed over every worker. */
export interface SimStats {
  hostsConnected: number;
  placements: number;
  agentStreamFailures: number;
  watchersConnected: number;
  revisions: number[];
  watcherReconnects: number;
  watcherErrors: string[];
  snapshots: Array<{ watcher: string; ms: number; routes: number; bytes: number }>;
  fullRoutes: number;
  workersRssBytes: number;
}

export class SimFleet {
  private readonly agentWorkers: Array<{ from: number; to: number; worker: AgentWorker }> = [];
  private readonly watcherWorkers: WatcherWorker[] = [];
  hosts = 0;
  watchers = 0;

  constructor(
    private readonly grpc: string,
    private readonly o: Pick<
      ScaleOptions,
      'hostsPerWorker' | 'hostsPerConnection' | 'reportIntervalMs' | 'fullReportIntervalMs' | 'watchersPerWorker' | 'fullWatchers' | 'togglePool'
    >,
  ) {}

  /** Starts fake hosts up to `hosts` (sim0..sim<hosts-1>). */
  growHosts(hosts: number): void {
    while (this.hosts < hosts) {
      const from = this.hosts;
      const to = Math.min(hosts, from + this.o.hostsPerWorker);
      this.agentWorkers.push({
        from,
        to,
        worker: new Worker(`agents${from}`, 'agent-worker.ts', {
          grpc: this.grpc,
          from,
          to,
          channels: Math.max(1, Math.ceil((to - from) / this.o.hostsPerConnection)),
          reportIntervalMs: this.o.reportIntervalMs,
          fullReportIntervalMs: this.o.fullReportIntervalMs,
        }),
      });
      this.hosts = to;
    }
  }

  /** Starts the route watchers (w0..w<count-1>), the first `fullWatchers` of them keeping whole tables. */
  startWatchers(count: number): void {
    for (let from = 0; from < count; from += this.o.watchersPerWorker) {
      const n = Math.min(this.o.watchersPerWorker, count - from);
      const full = Math.max(0, Math.min(n, this.o.fullWatchers - from));
      this.watcherWorkers.push(new Worker(`watchers${from}`, 'watcher-worker.ts', { grpc: this.grpc, from, count: n, full, togglePool: this.o.togglePool }));
    }
    this.watchers = count;
  }

  private ownerOf(hostId: string): AgentWorker {
    const i = Number(hostId.slice(3));
    const w = this.agentWorkers.find((a) => i >= a.from && i < a.to);
    if (!w) throw new Error(`no worker runs ${hostId}`);
    return w.worker;
  }

  async stats(): Promise<SimStats> {
    const agents = await Promise.all(this.agentWorkers.map((a) => a.worker.ask({ type: 'stats' })));
    const watchers = await Promise.all(this.watcherWorkers.map((w) => w.ask({ type: 'stats' }, 300_000)));
    const s: SimStats = {
      hostsConnected: 0,
      placements: 0,
      agentStreamFailures: 0,
      watchersConnected: 0,
      revisions: [],
      watcherReconnects: 0,
      watcherErrors: [],
      snapshots: [],
      fullRoutes: 0,
      workersRssBytes: 0,
    };
    for (const r of agents) {
      if (r.type !== 'stats') continue;
      s.hostsConnected += r.connected;
      s.placements += r.placements;
      s.agentStreamFailures += r.streamFailures;
      s.workersRssBytes += r.rssBytes;
    }
    for (const r of watchers) {
      if (r.type !== 'stats') continue;
      s.watchersConnected += r.connected;
      s.revisions.push(...r.revisions);
      s.watcherReconnects += r.reconnects;
      s.watcherErrors.push(...r.errors);
      s.snapshots.push(...r.snapshots);
      s.fullRoutes += r.fullRoutes;
      s.workersRssBytes += r.rssBytes;
    }
    return s;
  }

  /** The tenants the host's fake agent runs. */
  async instancesOf(hostId: string): Promise<string[]> {
    const r = await this.ownerOf(hostId).ask({ type: 'instances', hostId });
    return r.type === 'instances' ? r.tenantIds : [];
  }

  async lose(hostId: string): Promise<void> {
    await this.ownerOf(hostId).ask({ type: 'lose', hostId });
  }

  async bringBack(hostId: string): Promise<void> {
    await this.ownerOf(hostId).ask({ type: 'return', hostId });
  }

  /** Every watcher forgets the access changes it saw. */
  async resetToggles(): Promise<void> {
    await Promise.all(this.watcherWorkers.map((w) => w.ask({ type: 'reset' })));
  }

  /** Every watcher starts timing when the host's tenants turn unroutable. */
  async watchHost(hostId: string): Promise<void> {
    await Promise.all(this.watcherWorkers.map((w) => w.ask({ type: 'watchHost', hostId })));
  }

  /** Per watcher: `tenant|access` -> first applied (epoch ms). */
  async toggles(): Promise<Array<Record<string, number>>> {
    const rs = await Promise.all(this.watcherWorkers.map((w) => w.ask({ type: 'toggles' })));
    return rs.flatMap((r) => (r.type === 'toggles' ? r.perWatcher : []));
  }

  /** Per watcher: tenant of the watched host -> first seen unroutable (epoch ms). */
  async hostLoss(): Promise<Array<Record<string, number>>> {
    const rs = await Promise.all(this.watcherWorkers.map((w) => w.ask({ type: 'hostLoss' })));
    return rs.flatMap((r) => (r.type === 'hostLoss' ? r.perWatcher : []));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agentWorkers.map((a) => a.worker.stop()), ...this.watcherWorkers.map((w) => w.stop())]);
  }
}
