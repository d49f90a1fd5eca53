// One process of the scale simulator's route watchers (RouteWatcher), each on its own stream and
// router identity, answering the driver over IPC.
import { credentials } from '@grpc/grpc-js';
import { RouteFeedService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import type { WatcherWorkerConfig, WatcherWorkerReply, WatcherWorkerRequest } from './ipc.js';
import { OWN_CONNECTION } from './own-connection.js';
import { MAX_FEED_MESSAGE, RouteWatcher, togglePool } from './route-watcher.js';

const config = JSON.parse(process.argv[2] ?? '{}') as WatcherWorkerConfig;
const clients = Array.from({ length: config.count }, () =>
  createClient(RouteFeedService, config.grpc, credentials.createInsecure(), { 'grpc.max_receive_message_length': MAX_FEED_MESSAGE, ...OWN_CONNECTION }),
);
const toggled = togglePool(config.togglePool);

const watchers = clients.map((client, i) => new RouteWatcher(client, `w${config.from + i}`, i < config.full, toggled));
for (const w of watchers) w.start();

function reply(r: WatcherWorkerReply): void {
  process.send?.(r);
}

process.on('message', (m: WatcherWorkerRequest) => {
  if (m.type === 'stats') {
    const snapshots = watchers.flatMap((w) => w.snapshots.splice(0));
    reply({
      type: 'stats',
      seq: m.seq,
      connected: watchers.filter((w) => w.connected).length,
      revisions: watchers.map((w) => Number(w.revision)),
      snapshots,
      reconnects: watchers.reduce((s, w) => s + w.reconnects, 0),
      errors: watchers.flatMap((w) => w.errors.splice(0)),
      rssBytes: process.memoryUsage().rss,
      fullRoutes: watchers.reduce((s, w) => s + (w.routes?.size ?? 0), 0),
    });
  } else if (m.type === 'reset') {
    for (const w of watchers) w.toggles = {};
    reply({ type: 'ack', seq: m.seq });
  } else if (m.type === 'watchHost') {
    for (const w of watchers) {
      w.lostHost = m.hostId;
      w.hostLoss = {};
    }
    reply({ type: 'ack', seq: m.seq });
  } else if (m.type === 'toggles') {
    reply({ type: 'toggles', seq: m.seq, perWatcher: watchers.map((w) => w.toggles) });
  } else if (m.type === 'hostLoss') {
    reply({ type: 'hostLoss', seq: m.seq, perWatcher: watchers.map((w) => w.hostLoss) });
  } else if (m.type === 'exit') {
    for (const w of watchers) w.stop();
    for (const c of clients) c.close();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => process.exit(0));
