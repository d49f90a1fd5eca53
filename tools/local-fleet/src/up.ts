/**
 * `up`: start a whole fleet in the foreground and keep it running until Ctrl-C.
 * coordinator -> (healthy) -> agents -> (hosts READY) -> routers -> (listening) -> demo tenant
 * -> (ACTIVE and reachable through every router) -> fleet.json 'ready' and the banner.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CoordinatorService, HostState } from '@pgs/proto';
import { createClient, createLeaderClient, type Client } from '@pgs/rpc';
import { agentArgs, APP_SCRIPTS, checkBuilt, coordinatorArgs, expectedCommand, routerArgs } from './apps.js';
import { renderBanner } from './banner.js';
import { ensureCertificates, SNI_DOMAIN } from './certs.js';
import { checkReachable } from './demo-check.js';
import { ensureDemoTenant } from './demo-tenant.js';
import { ensureSecretKey, joinToken, launcherCredentials, securityFiles } from './fleet-security.js';
import { writeFleetFile, type FleetDescription } from './fleet-file.js';
import { createDirectories, fleetLayout, hostPlans, type FleetLayout } from './layout.js';
import { logTail, startProcess, type ManagedProcess } from './managed-process.js';
import type { FleetOptions } from './options.js';
import { isOurs, readPidFile, stopPid, writePidFile } from './pids.js';
import { stopPostgresInstances } from './postgres-instances.js';
import { firstFreePort } from './ports.js';
import { httpOk, tcpOpen, waitUntil } from './readiness.js';
import { STOP_TIMEOUTS, STORE_SERVERS, stopRecordedFleet, stopStoreServer } from './stop-order.js';
import { startStore } from './store-postgres.js';

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** First ops port tried for each agent (on its own address) and for the routers (on 127.0.0.1). */
const OPS_PORT_BASE = 7490;
const ROUTER_OPS_PORT_BASE = 7440;
/** First port tried for the coordinators' store primary (its standby takes the next free one). */
const STORE_PORT_BASE = 7420;

/** Where `up` reports progress. */
export type Say = (line: string) => void;

/** A fleet that failed to start: the message and the log to look at. */
export class FleetStartError extends Error {
  override readonly name = 'FleetStartError';
}

/** A stop signal arrived while the fleet was starting. */
class FleetStoppedError extends Error {
  override readonly name = 'FleetStoppedError';
}

interface Running {
  coordinators: ManagedProcess[];
  /** True once the store servers were started (they are stopped by their pid files). */
  store: boolean;
  agents: ManagedProcess[];
  routers: ManagedProcess[];
}

function cancelSecret(layout: FleetLayout): string {
  if (fs.existsSync(layout.cancelSecretFile)) return fs.readFileSync(layout.cancelSecretFile, 'utf8').trim();
  const secret = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(layout.cancelSecretFile, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** Fails a wait at once when a stop was asked for or a process died (with the end of its log). */
function diedCheck(processes: readonly ManagedProcess[], signal: AbortSignal): () => Error | undefined {
  return () => {
    if (signal.aborted) return signal.reason as Error;
    const dead = processes.find((p) => p.hasExited());
    return dead ? new FleetStartError(`${dead.name} exited during start; the end of ${dead.logFile}:\n${logTail(dead.logFile)}`) : undefined;
  };
}

async function stopAll(layout: FleetLayout, running: Running, say: Say): Promise<void> {
  const stopGroup = async (group: readonly ManagedProcess[], timeoutMs: number): Promise<void> => {
    const live = group.filter((p) => !p.hasExited());
    await Promise.all(live.map((p) => p.stop(timeoutMs)));
    for (const p of live) say(`stopped ${p.name}`);
  };
  await stopGroup(running.routers, STOP_TIMEOUTS.router);
  await stopGroup(running.agents, STOP_TIMEOUTS.agent);
  const n = await stopPostgresInstances([layout.agentsDir], STOP_TIMEOUTS.postgres);
  if (n > 0) say(`stopped ${n} tenant postgres server${n === 1 ? '' : 's'}`);
  await stopGroup(running.coordinators, STOP_TIMEOUTS.coordinator);
  if (running.store) for (const name of STORE_SERVERS) await stopStoreServer(layout, name, say);
}

/** Refuses to start twice; cleans up processes a killed launcher left behind. */
async function takeOver(layout: FleetLayout, say: Say): Promise<void> {
  const launcher = readPidFile(layout.pidFile('launcher'));
  if (launcher !== undefined && launcher !== process.pid && isOurs(launcher, expectedCommand('launcher'))) {
    throw new FleetStartError(
      `a local fleet is already running from ${layout.stateDir} (launcher pid ${launcher}); stop it with \`npm run fleet:down\` or Ctrl-C in its terminal`,
    );
  }
  await stopRecordedFleet(layout, (line) => say(`cleaning up a previous run: ${line}`));
}

/** Runs the fleet until SIGINT/SIGTERM; resolves with the exit code. */
export async function up(options: FleetOptions, say: Say): Promise<number> {
  checkBuilt();
  const layout = fleetLayout(options.stateDir);
  createDirectories(layout);
  await takeOver(layout, say);
  writePidFile(layout.pidFile('launcher'), process.pid);
  if (ensureCertificates(layout)) say(`made a local CA and router certificate: ${layout.caCert}`);
  const secret = cancelSecret(layout);

  const running: Running = { coordinators: [], store: false, agents: [], routers: [] };
  const all = (): ManagedProcess[] => [...running.routers, ...running.agents, ...running.coordinators];
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      say('stopping right now (second signal): killing every fleet process');
      for (const p of all()) if (!p.hasExited()) void stopPid(p.pid, 'SIGKILL', 1000);
      return;
    }
    say(`\n${signal}: stopping the fleet (routers, agents, tenant instances, coordinator); Ctrl-C again to force`);
    stop.abort(new FleetStoppedError(signal));
  };
  // SIGHUP too: a closed terminal should stop the fleet as cleanly as Ctrl-C does.
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  let client: Client<typeof CoordinatorService> | undefined;
  try {
    const description = await startFleet(options, layout, running, secret, say, stop.signal, (c) => (client = c));
    say(renderBanner(description, process.cwd()));
    for (const p of all()) {
      void p.exited.then((how) => {
        if (!stop.signal.aborted) say(`${p.name} (pid ${p.pid}) exited (${how}); the rest keeps running. Log: ${p.logFile}`);
      });
    }
    await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    return 0;
  } catch (err) {
    if (err instanceof FleetStoppedError) return 0;
    say(`local fleet failed to start: ${(err as Error).message}`);
    say('stopping what was started...');
    return 1;
  } finally {
    client?.close();
    await stopAll(layout, running, say);
    markStopped(layout);
    fs.rmSync(layout.pidFile('launcher'), { force: true });
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    say('local fleet stopped; `npm start` starts it again with the same tenants');
  }
}

function markStopped(layout: FleetLayout): void {
  try {
    const description = JSON.parse(fs.readFileSync(layout.fleetFile, 'utf8')) as { state: string };
    description.state = 'stopped';
    fs.writeFileSync(layout.fleetFile, `${JSON.stringify(description, null, 2)}\n`, { mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function startFleet(
  options: FleetOptions,
  layout: FleetLayout,
  running: Running,
  secret: string,
  say: Say,
  signal: AbortSignal,
  onClient: (c: Client<typeof CoordinatorService>) => void,
): Promise<FleetDescription> {
  const timeout = options.startTimeout;
  const files = securityFiles(layout);
  if (ensureSecretKey(files)) say(`made the coordinator's secret key: ${files.secretKeyFile} (mode 0600)`);
  const insecure = options.insecure;
  if (insecure) say('security off (--insecure): plaintext gRPC, components unauthenticated');
  const count = options.coordinators;
  checkStoreKind(layout, count);
  // Fixed ports, one pair per coordinator: a follower names the leader by its address.
  const taken = new Set<number>();
  const listens: Array<{ grpc: string; http: string }> = [];
  for (let i = 0; i < count; i++) {
    const g = await firstFreePort('127.0.0.1', options.coordinatorPort + i, taken);
    taken.add(g);
    const h = await firstFreePort('127.0.0.1', options.httpPort + i, taken);
    taken.add(h);
    listens.push({ grpc: `127.0.0.1:${g}`, http: `127.0.0.1:${h}` });
  }
  const grpcs = listens.map((l) => l.grpc);
  // Agents, routers and pgsctl get every coordinator and find the leader among them.
  const grpc = grpcs.join(',');
  const httpAddress = (listens[0] as { http: string }).http;

  let storeEnv: Record<string, string> = {};
  let store: FleetDescription['store'] = null;
  if (count > 1) {
    const primaryPort = await firstFreePort('127.0.0.1', STORE_PORT_BASE, taken);
    taken.add(primaryPort);
    const standbyPort = await firstFreePort('127.0.0.1', primaryPort + 1, taken);
    taken.add(standbyPort);
    say(`starting the coordinators' PostgreSQL store on 127.0.0.1:${primaryPort} with a synchronous standby on 127.0.0.1:${standbyPort}`);
    running.store = true;
    const started = await startStore(layout, {
      address: '127.0.0.1',
      primaryPort,
      standbyPort,
      timeoutMs: timeout,
      say,
      died: () => (signal.aborted ? (signal.reason as Error) : undefined),
    });
    // The password travels in the environment, never argv (ps shows argv).
    storeEnv = { PGS_STORE: started.url };
    store = { kind: 'postgres', servers: started.servers.map(({ name, address, port, dataDir, pid, log }) => ({ name, address, port, dataDir, pid, log })) };
  }

  for (const [i, l] of listens.entries()) {
    const name = i === 0 ? 'coordinator' : `coordinator-${i + 1}`;
    say(`starting ${name} on ${l.grpc} (REST http://${l.http})`);
    running.coordinators.push(
      startProcess({
        name,
        script: APP_SCRIPTS.coordinator,
        args: coordinatorArgs({
          grpc: l.grpc,
          http: l.http,
          dataDir: layout.coordinatorDataAt(i),
          secretKeyFile: files.secretKeyFile,
          backupsDir: layout.backupsDir,
          insecure,
          ...(count > 1 ? { adminTokenFile: files.tokenFile } : {}),
        }),
        env: storeEnv,
        logFile: layout.log(name),
        pidFile: layout.pidFile(name),
      }),
    );
  }
  const coordinatorDied = diedCheck(running.coordinators, signal);
  for (const l of listens)
    await waitUntil(`coordinator ${l.grpc} /healthz`, timeout, async () => ((await httpOk(`http://${l.http}/healthz`)) ? true : undefined), coordinatorDied);
  if (count > 1) await waitUntil('a coordinator leading', timeout, async () => leaderIndex(listens), coordinatorDied);
  // Whichever coordinator led first wrote the admin token; every coordinator writes the fleet CA to its data dir.
  const needed = insecure ? [files.tokenFile] : [files.caFile, files.tokenFile];
  await waitUntil('the fleet CA and the admin token', timeout, async () => (needed.every((f) => fs.existsSync(f)) ? true : undefined), coordinatorDied);
  const auth = launcherCredentials(files, insecure);
  const client =
    count > 1
      ? createLeaderClient(CoordinatorService, grpcs, auth.credentials, auth.channelOptions)
      : createClient(CoordinatorService, grpc, auth.credentials, auth.channelOptions);
  onClient(client);
  await Promise.race([
    client.waitForReady(timeout),
    new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
  ]);

  const hosts = hostPlans(layout, options.hostAddresses);
  const hostOps: string[] = [];
  for (const h of hosts) {
    signal.throwIfAborted();
    fs.mkdirSync(h.dataRoot, { recursive: true, mode: 0o755 });
    // Below the ephemeral range and on the host's own address: a port the kernel hands out to other
    // programs' connections could be taken between this choice and the agent's bind (it first makes
    // its template, seconds later).
    const ops = `${h.address}:${await firstFreePort(h.address, OPS_PORT_BASE)}`;
    hostOps.push(ops);
    say(`starting host agent ${h.id} on ${h.address} (zone ${h.zone})`);
    running.agents.push(
      startProcess({
        name: h.id,
        script: APP_SCRIPTS.agent,
        args: agentArgs({
          ...h,
          coordinator: grpc,
          ops,
          runtime: options.runtime,
          portRange: options.instancePorts,
          cpu: options.hostCpu,
          memory: options.hostMemory,
          disk: options.hostDisk,
          insecure,
        }),
        // A fresh single-use token each start; an agent that joined before keeps its certificate and ignores it.
        env: insecure ? {} : { PGS_JOIN_TOKEN: await joinToken(client, 'host', h.id) },
        logFile: layout.log(h.id),
        pidFile: layout.pidFile(h.id),
      }),
    );
  }
  const agentsDied = diedCheck([...(count > 1 ? [] : running.coordinators), ...running.agents], signal);
  await waitUntil(
    `hosts ${hosts.map((h) => h.id).join(', ')} READY`,
    timeout,
    async () => {
      const res = await client.listHosts({}, { timeoutMs: 5000 });
      const ready = new Set(res.hosts.filter((h) => h.state === HostState.READY).map((h) => h.id));
      return hosts.every((h) => ready.has(h.id)) ? true : undefined;
    },
    agentsDied,
  );

  const r1 = await firstFreePort('127.0.0.1', options.routerPort, taken);
  const r2 = await firstFreePort('127.0.0.1', r1 + 1, taken);
  const routers: FleetDescription['routers'] = [];
  for (const [i, port] of [r1, r2].entries()) {
    signal.throwIfAborted();
    const id = `r${i + 1}`;
    const listen = `127.0.0.1:${port}`;
    const ops = `127.0.0.1:${await firstFreePort('127.0.0.1', ROUTER_OPS_PORT_BASE + i * 10, taken)}`;
    const cachePath = layout.routerCache(id);
    fs.mkdirSync(cachePath.slice(0, cachePath.lastIndexOf('/')), { recursive: true });
    say(`starting router ${id} on ${listen}`);
    const p = startProcess({
      name: id,
      script: APP_SCRIPTS.router,
      args: routerArgs({
        id,
        listen,
        coordinator: grpc,
        cachePath,
        ops,
        tlsCert: layout.routerCert,
        tlsKey: layout.routerKey,
        sniDomain: SNI_DOMAIN,
        insecure,
      }),
      // Secrets go by environment, not argv, so `ps` does not show them.
      env: { PGS_CANCEL_SECRET: secret, ...(insecure ? {} : { PGS_JOIN_TOKEN: await joinToken(client, 'router', id) }) },
      logFile: layout.log(id),
      pidFile: layout.pidFile(id),
    });
    running.routers.push(p);
    routers.push({ id, listen, ops, cachePath, pid: p.pid, log: p.logFile });
  }
  // With several coordinators one may die (someone tries a failover) without the start failing.
  const allDied = diedCheck([...(count > 1 ? [] : running.coordinators), ...running.agents, ...running.routers], signal);
  for (const r of routers) {
    const [host, port] = r.listen.split(':') as [string, string];
    await waitUntil(
      `router ${r.id}`,
      timeout,
      async () => ((await tcpOpen(host, Number(port))) && (await httpOk(`http://${r.ops}/healthz`)) ? true : undefined),
      allDied,
    );
  }

  const description: FleetDescription = {
    version: 1,
    state: 'starting',
    stateDir: layout.stateDir,
    backupsDir: layout.backupsDir,
    launcherPid: process.pid,
    startedAt: new Date().toISOString(),
    coordinator: {
      grpc,
      http: httpAddress,
      dataDir: layout.coordinatorData,
      pid: running.coordinators[0]?.pid ?? 0,
      log: running.coordinators[0]?.logFile ?? '',
      caFile: files.caFile,
      tokenFile: files.tokenFile,
      insecure,
    },
    coordinators: listens.map((l, i) => ({
      name: running.coordinators[i]?.name ?? '',
      grpc: l.grpc,
      http: l.http,
      dataDir: layout.coordinatorDataAt(i),
      pid: running.coordinators[i]?.pid ?? 0,
      log: running.coordinators[i]?.logFile ?? '',
    })),
    store,
    leader: count > 1 ? ((await leaderIndex(listens)) ?? null) : 0,
    hosts: hosts.map((h, i) => ({ ...h, ops: hostOps[i] ?? '', pid: running.agents[i]?.pid ?? 0, log: running.agents[i]?.logFile ?? '' })),
    routers,
    caPath: layout.caCert,
    sniDomain: SNI_DOMAIN,
    demo: null,
  };
  writeFleetFile(layout.fleetFile, description);

  if (options.demoTenant !== '') {
    say(`creating or reusing the demo tenant "${options.demoTenant}"...`);
    const demo = await ensureDemoTenant(client, options.demoTenant, layout.demoPasswordFile, timeout, (text) => say(`  ${text}`), allDied);
    const uriFor = (listen: string, query: string): string => `postgresql://${demo.tenant}:${demo.password}@${listen}/${demo.tenant}?${query}`;
    const uris = routers.map((r) => uriFor(r.listen, 'sslmode=require'));
    description.demo = {
      tenant: demo.tenant,
      user: demo.tenant,
      database: demo.tenant,
      passwordFile: layout.demoPasswordFile,
      uri: uris[0] ?? '',
      uris,
      uriVerifyFull: uriFor(routers[0]?.listen ?? '', `sslmode=verify-full&sslrootcert=${encodeURIComponent(layout.caCert).replaceAll('%2F', '/')}`),
    };
    // ACTIVE at the coordinator is not yet routable at the edge: wait until every router connects us.
    for (const [i, r] of routers.entries()) {
      await waitUntil(`demo tenant through router ${r.id}`, timeout, () => checkReachable(uris[i] ?? '', layout.caCert), allDied);
    }
  }
  description.state = 'ready';
  if (count > 1) description.leader = (await leaderIndex(listens)) ?? null;
  writeFleetFile(layout.fleetFile, description);
  return description;
}

/** Which coordinator says it leads on /healthz (0-based), undefined while none does. */
export async function leaderIndex(listens: ReadonlyArray<{ http: string }>): Promise<number | undefined> {
  for (const [i, l] of listens.entries()) {
    try {
      const res = await fetch(`http://${l.http}/healthz`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { role?: string };
      if (body.role === 'leader') return i;
    } catch {
      // Not answering (starting, stopped or killed): not the leader.
    }
  }
  return undefined;
}

/**
 * A state dir keeps its fleet in one store: SQLite (one coordinator) or the fleet's PostgreSQL
 * (several). Starting the other kind on it would show an empty fleet to agents that joined the
 * first one, so it is refused with what to do instead.
 */
function checkStoreKind(layout: FleetLayout, count: number): void {
  const sqlite = fs.existsSync(path.join(layout.coordinatorData, 'coordinator.db'));
  const postgres = fs.existsSync(path.join(layout.storeDir, 'primary', 'PG_VERSION'));
  const fix = `\`npm run fleet:reset\` wipes it, or give another --state-dir`;
  if (count > 1 && sqlite)
    throw new FleetStartError(`${layout.stateDir} holds a fleet with one coordinator on SQLite; --coordinators ${count} needs a fleet of its own: ${fix}`);
  if (count === 1 && postgres)
    throw new FleetStartError(`${layout.stateDir} holds a fleet with several coordinators on PostgreSQL; start it with --coordinators 3 again, or ${fix}`);
}
