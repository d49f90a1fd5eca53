#!/usr/bin/env node
// The host agent's composition root: config, logger, runtime, instance manager, agent stream, ops endpoint.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentControlService } from '@pgs/proto';
import { createLeaderClient, splitAddresses } from '@pgs/rpc';
import { createLogger, createRegistry, handleShutdown, runMain, startOpsServer } from '@pgs/service-kit';
import { AgentLoop } from './agent-loop.js';
import { hostCapacity } from './capacity.js';
import { readAgentConfig } from './config.js';
import { connectCoordinatorLink, coordinatorCredentials } from './grpc-credentials.js';
import { InstanceAdmin } from './instance-admin.js';
import { startInstanceCertificate } from './instance-certificate.js';
import { InstanceManager } from './instance-manager.js';
import { Lease } from './lease.js';
import { createAgentMetrics } from './metrics.js';
import { createRuntime, instanceFilesOwner } from './runtime/create-runtime.js';
import { UpgradeRunner } from './upgrade/upgrade-runner.js';

function agentVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

function countByState(statuses: readonly { state: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s.state] = (out[s.state] ?? 0) + 1;
  return out;
}

runMain(async () => {
  const parsed = readAgentConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return;
  }
  const config = parsed.config;
  const log = createLogger({ app: 'host-agent', level: config.logLevel });
  fs.mkdirSync(config.dataRoot, { recursive: true });
  // The fleet certificate first (saved, or joined with the token): a bad token fails before anything starts.
  const link = await connectCoordinatorLink(config, log);
  const runtime = createRuntime(config, log);
  await runtime.init();
  // The instances' server certificate (saved, or issued now, or retried in the background).
  const state = { manager: undefined as InstanceManager | undefined, loop: undefined as AgentLoop | undefined };
  const certificate = await startInstanceCertificate({
    link,
    coordinator: config.coordinator,
    hostId: config.hostId,
    address: config.address,
    dataRoot: path.resolve(config.dataRoot),
    owner: instanceFilesOwner(config, log),
    log,
    onAvailable: (files) => state.manager?.setInstanceTls({ files }),
    onRenewed: () => void runtime.reloadTls(),
  });
  const registry = createRegistry('host-agent');
  const metrics = createAgentMetrics(registry, () => ({
    instancesByState: countByState(state.manager?.statuses() ?? []),
    connected: state.loop?.connected ?? false,
    appliedGeneration: state.loop?.appliedGeneration ?? 0,
  }));
  const admin = new InstanceAdmin((tenantId, database) => runtime.adminConnection(tenantId, database), log.child({ component: 'instance-admin' }));
  // The coordinator's lease (kept across restarts in the data root): primaries with replicas stop when it runs out.
  const lease = new Lease({ file: path.join(config.dataRoot, 'lease.json'), log: log.child({ component: 'lease' }) });
  const maxConcurrentCreates = config.createConcurrency > 0 ? config.createConcurrency : os.availableParallelism();
  const tools = runtime.upgradeTools?.();
  const upgrades =
    tools &&
    new UpgradeRunner({
      admin,
      connect: (tenantId, database) => runtime.adminConnection(tenantId, database),
      ...tools,
      log: log.child({ component: 'upgrade' }),
    });
  const manager = new InstanceManager({
    runtime,
    admin,
    log,
    metrics,
    healthIntervalMs: config.healthInterval,
    senderWatchMs: config.senderWatchInterval,
    lease,
    maxConcurrentCreates,
    upgrades,
  });
  state.manager = manager;
  manager.setInstanceTls({ files: certificate?.files() });
  await manager.start();
  const capacity = hostCapacity(config.dataRoot, config.capacity);
  // Several coordinators (comma-separated): the client finds the leader and follows it after a failover.
  const client = createLeaderClient(AgentControlService, splitAddresses(config.coordinator), coordinatorCredentials(link));
  const loop = new AgentLoop({
    client,
    manager,
    identity: {
      hostId: config.hostId,
      address: config.address,
      capacity,
      labels: { ...config.labels },
      runtime: runtime.kind,
      agentVersion: agentVersion(),
      postgres: runtime.postgresMajors(),
      // Every instance keeps its port while it exists (suspended too): the range bounds the instances.
      instanceSlots: config.portRange.last - config.portRange.first + 1,
    },
    log,
    metrics,
    reportIntervalMs: config.reportInterval,
    fullReportIntervalMs: config.fullReportInterval,
    defaultHeartbeatMs: config.heartbeatInterval,
    backoffMinMs: config.reconnectMin,
    backoffMaxMs: config.reconnectMax,
    lease,
    readySpares: () => runtime.readySpares(),
  });
  state.loop = loop;
  // A spare taken or made is told at once, not at the next heartbeat: placement prefers hosts
  // with a spare left, and a count a heartbeat old sent creates to a host whose pool was empty.
  runtime.onSparesChanged?.(() => loop.heartbeatSoon());
  const ops = await startOpsServer({
    host: config.opsListen.host,
    port: config.opsListen.port,
    registry,
    health: () => ({
      ok: true,
      hostId: config.hostId,
      runtime: runtime.kind,
      coordinatorConnected: loop.connected,
      appliedGeneration: loop.appliedGeneration,
      instances: countByState(manager.statuses()),
    }),
  });
  loop.start();
  log.info(
    {
      hostId: config.hostId,
      address: config.address,
      runtime: runtime.kind,
      coordinator: config.coordinator,
      ops: ops.address,
      capacity,
      labels: config.labels,
      instances: manager.statuses().length,
    },
    'host agent started',
  );
  handleShutdown(log, async () => {
    // Instances keep running: a stopped or restarting agent adopts them again.
    await loop.stop();
    await manager.close();
    await runtime.close();
    client.close();
    certificate?.stop();
    link.stop();
    await ops.close();
  });
});
