// One process of the scale simulator's fake hosts: a slice of the fleet's hosts, each a FakeAgent
// with its own identity and its own AgentControlService.Connect stream to the real coordinator
// (hello, heartbeats at the interval the Welcome gives, instance reports for every desired set and
// full reports at the real agent's default period).
// The parent drives it over IPC: stats, losing a host (its stream cancelled, no heartbeats) and
// bringing it back.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { AgentControlService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { FakeAgent, type FakeAgentStats } from '../fleet-fake-agent.js';
import type { AgentWorkerConfig, AgentWorkerReply, AgentWorkerRequest } from './ipc.js';
import { OWN_CONNECTION } from './own-connection.js';

const config = JSON.parse(process.argv[2] ?? '{}') as AgentWorkerConfig;
const stats: FakeAgentStats = {
  placementsReceived: 0,
  lastPlacementAt: 0,
  welcomed: 0,
  connected: 0,
  streamFailures: 0,
  failureSamples: [],
  failureReasons: {},
};
// A starved worker sends its hosts' heartbeats late: its own stalls tell the coordinator's part from the simulator's.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
const channels = Array.from({ length: config.channels }, () => createClient(AgentControlService, config.grpc, credentials.createInsecure(), OWN_CONNECTION));
const agents = new Map<string, FakeAgent>();

/** Host i of the whole fleet: its id, a loopback-looking address (never dialled: no instance is behind it) and a zone. */
function makeAgent(i: number): FakeAgent {
  const channel = channels[i % channels.length] as (typeof channels)[number];
  return new FakeAgent(
    channel,
    `sim${i}`,
    `127.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    `z${i % 3}`,
    stats,
    config.reportIntervalMs,
    config.fullReportIntervalMs,
  );
}

function startHost(i: number): void {
  const a = makeAgent(i);
  agents.set(a.hostId, a);
  a.start();
}

for (let i = config.from; i < config.to; i++) startHost(i);

function reply(r: AgentWorkerReply): void {
  process.send?.(r);
}

process.on('message', (m: AgentWorkerRequest) => {
  if (m.type === 'stats') {
    reply({
      type: 'stats',
      seq: m.seq,
      connected: stats.connected,
      welcomed: stats.welcomed,
      placements: stats.placementsReceived,
      streamFailures: stats.streamFailures,
      failureReasons: stats.failureReasons,
      loopStallMaxMs: Math.round(loopDelay.max / 1e6),
      rssBytes: process.memoryUsage().rss,
    });
  } else if (m.type === 'lose') {
    agents.get(m.hostId)?.stop();
    agents.delete(m.hostId);
    reply({ type: 'ack', seq: m.seq });
  } else if (m.type === 'return') {
    startHost(Number(m.hostId.slice(3)));
    reply({ type: 'ack', seq: m.seq });
  } else if (m.type === 'instances') {
    reply({ type: 'instances', seq: m.seq, tenantIds: agents.get(m.hostId)?.tenantIds() ?? [] });
  } else if (m.type === 'exit') {
    for (const a of agents.values()) a.stop();
    for (const c of channels) c.close();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => process.exit(0));
