/** Messages between the scale simulator's driver and its worker processes (node IPC, JSON). */

/** argv[2] of an agent worker: fake hosts from..to-1 of the fleet. */
export interface AgentWorkerConfig {
  grpc: string;
  from: number;
  to: number;
  /** Connections the worker's hosts' streams are spread over (each channel its own HTTP/2 connection). */
  channels: number;
  /** Periodic instance reports at this period (ms; 0 = only on desired sets), as a real agent's --report-interval. */
  reportIntervalMs: number;
  /** An unchanged instance is reported again this often (ms), as a real agent's --full-report-interval. */
  fullReportIntervalMs: number;
}

export type AgentWorkerRequest =
  | { type: 'stats'; seq: number }
  | { type: 'lose'; seq: number; hostId: string }
  | { type: 'return'; seq: number; hostId: string }
  | { type: 'instances'; seq: number; hostId: string }
  | { type: 'exit'; seq: number };

export type AgentWorkerReply =
  | {
      type: 'stats';
      seq: number;
      connected: number;
      welcomed: number;
      placements: number;
      streamFailures: number;
      /** Stream failures by reason (the error's message). */
      failureReasons: Record<string, number>;
      /** The worker's own longest event-loop stall since it started (ms): its hosts sent nothing meanwhile. */
      loopStallMaxMs: number;
      rssBytes: number;
    }
  | { type: 'instances'; seq: number; tenantIds: string[] }
  | { type: 'ack'; seq: number };

/** argv[2] of a watcher worker: watchers named w<from>..w<from+count-1>. */
export interface WatcherWorkerConfig {
  grpc: string;
  from: number;
  count: number;
  /** How many of them keep the whole route table in memory (the rest follow revisions and what is tracked). */
  full: number;
  /** Tenants t0..t<togglePool-1>: their access changes are timed (first time each value is seen in a delta). */
  togglePool: number;
}

/** One watcher's view of a snapshot it received. */
export interface SnapshotSample {
  watcher: string;
  ms: number;
  routes: number;
  bytes: number;
}

export type WatcherWorkerRequest =
  | { type: 'stats'; seq: number }
  /** Forget the access changes seen so far (a new step toggles the pool again). */
  | { type: 'reset'; seq: number }
  /** From now, time when each tenant on this host is first seen not ROUTABLE. */
  | { type: 'watchHost'; seq: number; hostId: string }
  /** When each `tenant|access` key was first applied, per watcher (epoch ms, fractional). */
  | { type: 'toggles'; seq: number }
  /** When each tenant of the watched host was first seen not routable, per watcher. */
  | { type: 'hostLoss'; seq: number }
  | { type: 'exit'; seq: number };

export type WatcherWorkerReply =
  | {
      type: 'stats';
      seq: number;
      connected: number;
      revisions: number[];
      snapshots: SnapshotSample[];
      reconnects: number;
      errors: string[];
      rssBytes: number;
      fullRoutes: number;
    }
  | { type: 'toggles'; seq: number; perWatcher: Array<Record<string, number>> }
  | { type: 'hostLoss'; seq: number; perWatcher: Array<Record<string, number>> }
  | { type: 'ack'; seq: number };

/** Wall-clock time with sub-millisecond resolution, comparable across the simulator's processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
