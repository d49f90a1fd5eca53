/**
 * The lease thread: the leader election loop of startLeaderElection, run on a worker thread of its
 * own so that its renewals are sent and read on time however long the main thread's turns take.
 * What it may act on is published in the shared slots at every step; changes of role and log lines
 * go to the main thread as messages (read there when its turn comes, which is soon enough: the
 * slots are what every write is judged by).
 *
 * It keeps the lease only while the main thread still runs: a main thread silent for longer than
 * `maxStallMs` is taken to be hung, and the lease is left to run out so another coordinator can
 * lead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Leadership } from '@pgs/tenancy';
import { connectPrimary } from '../store/postgres/pg-connection.js';
import { startLeaderElection } from './leader-election.js';
import { monotonicMs, publishLeadership, sinceBeat } from './lease-slots.js';
import type { LeaseThreadData, ToLeaseThread, FromLeaseThread } from './lease-thread-messages.js';

const port = parentPort;
if (!port) throw new Error('lease-worker runs as a worker thread only');
const data = workerData as LeaseThreadData;
const post = (m: FromLeaseThread): void => port.postMessage(m);

let stalled = false;
const election = startLeaderElection({
  holder: data.holder,
  address: data.address,
  connect: async () => (await connectPrimary(data.urls)).client,
  timings: data.timings,
  clock: monotonicMs,
  log: {
    info: (obj, msg) => post({ type: 'log', level: 'info', obj, msg }),
    warn: (obj, msg) => post({ type: 'log', level: 'warn', obj, msg }),
  },
  mayAttempt: () => {
    const silent = sinceBeat(data.slots, monotonicMs());
    const ok = silent < data.maxStallMs;
    if (ok === stalled) {
      stalled = !ok;
      post(
        ok
          ? { type: 'log', level: 'info', obj: {}, msg: 'the main thread runs again; taking part in the lease again' }
          : {
              type: 'log',
              level: 'warn',
              obj: { silentMs: Math.round(silent) },
              msg: 'the main thread has not run for too long; no longer renewing or taking the lease',
            },
      );
    }
    return ok;
  },
  onState: (l: Leadership) => publishLeadership(data.slots, l),
});
election.onChange((leadership) => post({ type: 'change', leadership }));

port.on('message', (m: ToLeaseThread) => {
  if (m.type === 'tick') {
    void election.tick().then(() => post({ type: 'ticked', id: m.id }));
    return;
  }
  void election.stop({ release: m.release }).then(() => {
    publishLeadership(data.slots, { role: 'follower', leader: undefined });
    post({ type: 'stopped' });
    port.close();
  });
});
