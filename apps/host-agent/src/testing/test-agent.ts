/**
 * Test support: an agent wired in-process like main.ts wires it (process runtime, instance manager,
 * agent loop) with short intervals, talking to a coordinator address over real gRPC.
 */
import { AgentControlService } from '@pgs/proto';
import { COORDINATOR_KEEPALIVE, createClient } from '@pgs/rpc';
import { createRegistry } from '@pgs/service-kit';
import { AgentLoop } from '../agent-loop.js';
import { coordinatorCredentials } from '../grpc-credentials.js';
import { InstanceAdmin } from '../instance-admin.js';
import { InstanceManager } from '../instance-manager.js';
import { Lease } from '../lease.js';
import { createAgentMetrics } from '../metrics.js';
import type { InstanceRuntime } from '../runtime/runtime.js';
import { UpgradeRunner } from '../upgrade/upgrade-runner.js';
import { testLogger, testProcessRuntime } from './test-env.js';

/** A running in-process agent. */
export interface TestAgent {
  runtime: InstanceRuntime;
  manager: InstanceManager;
  loop: AgentLoop;
  /** Stops the agent; instances keep running unless `removeInstances`. */
  stop(options?: { removeInstances?: boolean }): Promise<void>;
}

/** Starts an agent on `dataRoot` that connects to `coordinator`. */
export async function startTestAgent(options: {
  coordinator: string;
  dataRoot: string;
  hostId?: string;
  address?: string;
  runtime?: InstanceRuntime;
  lease?: boolean;
}): Promise<TestAgent> {
  const log = testLogger();
  const address = options.address ?? '127.0.0.1';
  const runtime = options.runtime ?? testProcessRuntime({ dataRoot: options.dataRoot, address, log });
  await runtime.init();
  const registry = createRegistry('host-agent-test');
  const state: { manager?: InstanceManager; loop?: AgentLoop } = {};
  const metrics = createAgentMetrics(registry, () => ({
    instancesByState: {},
    connected: state.loop?.connected ?? false,
    appliedGeneration: state.loop?.appliedGeneration ?? 0,
  }));
  const admin = new InstanceAdmin((t, db) => runtime.adminConnection(t, db), log);
  const lease = options.lease ? new Lease({ file: `${options.dataRoot}/lease.json`, log }) : undefined;
  const tools = runtime.upgradeTools?.();
  const upgrades = tools && new UpgradeRunner({ admin, connect: (t, db) => runtime.adminConnection(t, db), ...tools, log });
  const manager = new InstanceManager({
    runtime,
    admin,
    log,
    metrics,
    healthIntervalMs: 200,
    retryBaseMs: 200,
    retryMaxMs: 2000,
    ...(lease ? { lease } : {}),
    upgrades,
  });
  state.manager = manager;
  await manager.start();
  const client = createClient(AgentControlService, options.coordinator, coordinatorCredentials(), COORDINATOR_KEEPALIVE);
  const loop = new AgentLoop({
    client,
    manager,
    identity: {
      hostId: options.hostId ?? 'h-test',
      address,
      capacity: { cpuMillis: 4000, memoryMib: 8192, diskMib: 102_400 },
      labels: { zone: 'a', region: 'eu' },
      runtime: runtime.kind,
      agentVersion: 'test',
    },
    log,
    metrics,
    reportIntervalMs: 500,
    // Short, so tests that wait for a moving figure (a quiet primary's archived-through) wait little.
    fullReportIntervalMs: 2000,
    defaultHeartbeatMs: 200,
    backoffMinMs: 50,
    backoffMaxMs: 500,
    ...(lease ? { lease } : {}),
    readySpares: () => runtime.readySpares(),
  });
  state.loop = loop;
  runtime.onSparesChanged?.(() => loop.heartbeatSoon());
  loop.start();
  return {
    runtime,
    manager,
    loop,
    async stop(stopOptions = {}) {
      await loop.stop();
      await manager.close();
      client.close();
      if (stopOptions.removeInstances) for (const i of await runtime.list()) await runtime.remove(i.tenantId);
      await runtime.close();
    },
  };
}
