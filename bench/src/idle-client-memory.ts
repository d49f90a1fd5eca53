// Memory a proxy spends per idle client: open N client connections through it (each a full startup
// and SCRAM login with node-postgres, a bounded number at a time), leave them idle, and read the
// proxy's RSS and PSS (from /proc/<pid>/smaps_rollup) before, at N/2 and at N. Part of router-bench.ts.
//
// The per-client cost is the slope between N/2 and N: a garbage-collected proxy (the router) also
// grows once for the login path (compiled code, buffers) and shrinks when it collects garbage of
// earlier work, which moves "after - before" by megabytes, either way.
import fs from 'node:fs';
import pg from 'pg';

export interface Memory {
  rssKiB: number;
  pssKiB: number;
}

export interface IdleClientMemory {
  before: Memory;
  half: Memory;
  after: Memory;
  clients: number;
  /** (after - half) / (clients - clients / 2). */
  rssPerClientKiB: number;
  pssPerClientKiB: number;
  /** The same slope of the live heap (heap snapshots), for targets that can write one. */
  heapPerClientKiB?: number;
}

/** Rss and Pss of one process, from /proc/<pid>/smaps_rollup (kB there is KiB). */
export function memoryOf(pid: number): Memory {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/smaps_rollup`);
    return Number(m[1]);
  };
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

/** This process's soft limit of open files, from /proc/self/limits. */
function openFilesLimit(): number {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

/**
 * Fails with what to do when this process (and so the proxies it starts, which inherit the limit)
 * cannot hold `clients` sockets plus some headroom.
 */
export function checkOpenFilesLimit(clients: number): void {
  const limit = openFilesLimit();
  const needed = clients * 2 + 256;
  if (limit < needed) {
    throw new Error(
      `the open files limit is ${limit}, the idle-client memory run needs about ${needed}: run "ulimit -n ${needed}" (as root, or raise the hard limit) in this shell and rerun, or set PGS_BENCH_IDLE_CLIENTS lower`,
    );
  }
}

export interface IdleTarget {
  port: number;
  user: string;
  password: string;
  database: string;
  /** The proxy's process, whose memory is read. */
  pid: number;
  /** Its live JavaScript heap in bytes (heap-snapshot.ts), read at N and at N/2 (half closed) when given. */
  heap?: () => Promise<number>;
}

const CONCURRENT_LOGINS = 50;
/** Longest time a proxy is expected to keep a closed client's objects (the router's close grace, 5 s, and a margin). */
const CLOSE_GRACE_MS = 6000;
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * Opens `clients` idle connections through the target, reads its memory, closes them. The memory
 * is read after `settleMs` so that buffers of the login burst a proxy frees lazily are not counted
 * as per-client cost.
 */
export async function measureIdleClientMemory(target: IdleTarget, clients: number, settleMs = 1000): Promise<IdleClientMemory> {
  const before = memoryOf(target.pid);
  const open: pg.Client[] = [];
  const halfway = Math.floor(clients / 2);
  try {
    let next = 0;
    const openUpTo = (n: number): Promise<unknown> => Promise.all(Array.from({ length: Math.min(CONCURRENT_LOGINS, n) }, () => worker(n)));
    const worker = async (upTo: number): Promise<void> => {
      while (next < upTo) {
        next++;
        const c = new pg.Client({
          host: '127.0.0.1',
          port: target.port,
          user: target.user,
          password: target.password,
          database: target.database,
          connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        });
        // A server-side error on an idle client (the proxy closing it) must not crash the benchmark.
        c.on('error', () => undefined);
        open.push(c);
        await c.connect();
      }
    };
    // connect() resolves at ReadyForQuery: every client is logged in. No query is sent, so a proxy
    // that lends a server only for a query (PgBouncer in any mode) is measured idle too.
    await openUpTo(halfway);
    await new Promise((r) => setTimeout(r, settleMs));
    const half = memoryOf(target.pid);
    await openUpTo(clients);
    await new Promise((r) => setTimeout(r, settleMs));
    const after = memoryOf(target.pid);
    // The heap after RSS and PSS (a snapshot grows the process): at N, then at N/2 again once the
    // other half closed (the code the logins compiled stays in both).
    let heapPerClientKiB: number | undefined;
    if (target.heap) {
      const heapAll = await target.heap();
      const closing = open.splice(halfway);
      await Promise.all(closing.map((c) => c.end().catch(() => undefined)));
      // A proxy may hold a closed client's socket a while (the router: up to 5 s for the client to
      // read what is left): still there, it would count as not freed.
      await new Promise((r) => setTimeout(r, settleMs + CLOSE_GRACE_MS));
      const heapHalf = await target.heap();
      heapPerClientKiB = (heapAll - heapHalf) / 1024 / closing.length;
    }
    return {
      ...(heapPerClientKiB !== undefined ? { heapPerClientKiB } : {}),
      before,
      half,
      after,
      clients,
      rssPerClientKiB: (after.rssKiB - half.rssKiB) / (clients - halfway),
      pssPerClientKiB: (after.pssKiB - half.pssKiB) / (clients - halfway),
    };
  } finally {
    await Promise.all(open.map((c) => c.end().catch(() => undefined)));
  }
}
