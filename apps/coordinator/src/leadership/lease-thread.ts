/**
 * The leader election on a thread of its own. On a busy coordinator (a thousand agents reporting,
 * creates in large groups) one turn of the main thread's event loop can take longer than the whole
 * lease: a renewal answered in time is then read too late, the coordinator steps down, and every
 * agent and router reconnects to whoever leads next — which makes the next turns longer still. On
 * the lease thread a renewal is sent and read on time whatever the main thread is doing, and the
 * main thread reads what it may act on from shared memory, synchronously, on every write.
 *
 * Safety does not rest on the thread: every write of the leader is fenced by the lease row in the
 * same transaction. Liveness does: a main thread that stops running altogether (a hang, not load)
 * must not keep the lease for ever, so the main thread beats every BEAT_MS and the lease thread
 * stops renewing once no beat came for `maxStallMs`.
 *
 * The same LeaderElection interface as startLeaderElection (which runs in the calling thread and is
 * what this thread runs).
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '@pgs/service-kit';
import type { Leadership, LeaseTimings } from '@pgs/tenancy';
import type { LeaderElection } from './leader-election.js';
import { beat, monotonicMs, newLeaseSlots, publishLeadership, readLeadership } from './lease-slots.js';
import type { FromLeaseThread, LeaseThreadData, ToLeaseThread } from './lease-thread-messages.js';

/**
 * How long the main thread may go without running before its lease is let go. The longest turns
 * measured on a working coordinator here were a few seconds (first starts of 100,000 tenants on two
 * loaded cores); a main thread silent for 15 s is hung, and its agents' own keepalives (30 s) are
 * about to give up on it anyway.
 */
export const DEFAULT_MAX_STALL_MS = 15_000;
/** How often the main thread says it runs. */
const BEAT_MS = 250;
/** How long a lease thread that failed waits before it is started again. */
const RESTART_MS = 1000;

/** Options of startLeaseThread. */
export interface LeaseThreadOptions {
  holder: string;
  address: string;
  urls: string[];
  timings: LeaseTimings;
  log: Logger;
  maxStallMs?: number;
}

/** The worker's entry: the compiled file, or the TypeScript source through tsx when running from source (tests). */
function spawn(data: LeaseThreadData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./lease-worker.js', here), { workerData: data });
  // tsx (a dev dependency) is found from the working directory, as the test runner's own is.
  const entry = new URL('./lease-worker.ts', here).href;
  return new Worker(`import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`, {
    eval: true,
    workerData: data,
  });
}

/** Starts the lease thread; the first attempt runs at once. */
export function startLeaseThread(o: LeaseThreadOptions): LeaderElection {
  const slots = newLeaseSlots();
  const data: LeaseThreadData = {
    holder: o.holder,
    address: o.address,
    urls: o.urls,
    timings: o.timings,
    maxStallMs: o.maxStallMs ?? DEFAULT_MAX_STALL_MS,
    slots,
  };
  const listeners = new Set<(l: Leadership) => void>();
  const ticks = new Map<number, () => void>();
  let nextTick = 0;
  let known: Leadership = { role: 'follower', leader: undefined };
  let stopping: Promise<void> | undefined;
  let restart: NodeJS.Timeout | undefined;
  const beating = setInterval(() => beat(slots), BEAT_MS);
  beating.unref();

  const tell = (l: Leadership): void => {
    known = l;
    for (const listener of listeners) listener(l);
  };

  let worker: Worker;
  let alive = false;
  let stopped: (() => void) | undefined;
  const start = (): void => {
    worker = spawn(data);
    alive = true;
    worker.on('message', (m: FromLeaseThread) => {
      if (m.type === 'change') tell(m.leadership);
      else if (m.type === 'ticked') ticks.get(m.id)?.();
      else if (m.type === 'log') o.log[m.level](m.obj, m.msg);
      else stopped?.();
    });
    worker.on('error', (err) => o.log.error({ err }, 'the lease thread failed'));
    worker.on('exit', (code) => {
      alive = false;
      stopped?.();
      for (const done of ticks.values()) done();
      ticks.clear();
      if (stopping) return;
      // Not asked to stop: whatever it held is no longer renewed.
      publishLeadership(slots, { role: 'follower', leader: undefined });
      o.log.error({ code }, `the lease thread ended; starting it again in ${RESTART_MS} ms`);
      tell({ role: 'follower', leader: undefined });
      restart = setTimeout(start, RESTART_MS);
    });
  };
  start();

  const send = (m: ToLeaseThread): void => worker.postMessage(m);

  return {
    holder: o.holder,
    current: () => {
      const mine = readLeadership(slots, monotonicMs());
      if (mine) return { role: 'leader', epoch: mine.epoch, actUntil: mine.actUntil };
      return known.role === 'follower' ? known : { role: 'follower', leader: undefined };
    },
    leaderEpoch: () => readLeadership(slots, monotonicMs())?.epoch,
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    tick: () =>
      stopping || !alive
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const id = nextTick++;
            ticks.set(id, () => {
              ticks.delete(id);
              resolve();
            });
            send({ type: 'tick', id });
          }),
    stop: ({ release = true } = {}) =>
      (stopping ??= (async () => {
        clearInterval(beating);
        clearTimeout(restart);
        // Nothing acts on the lease from here on, released or not.
        publishLeadership(slots, { role: 'follower', leader: undefined });
        if (!alive) return;
        const done = new Promise<void>((resolve) => (stopped = resolve));
        send({ type: 'stop', release });
        await done;
        await worker.terminate();
      })()),
  };
}
