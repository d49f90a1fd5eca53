// The deployment guide (deploy/README.md), followed on one machine: each "machine" (a coordinator,
// three hosts, two routers) is a network namespace with its own address on a LAN that nothing can
// leave (the test range is blackholed in the root namespace first). The release tarballs are
// installed per machine under <machine>/opt, options go into <machine>/etc/pgs/*.env, and each
// component runs as its shipped systemd unit's ExecStart says, under a small supervisor that
// restarts it on failure. The operator's workstation (pgsctl) and the clients are the root
// namespace. Then a rolling upgrade of every component, in the guide's order, under a client that
// connects through the routers like a load balancer would.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BalancedClient } from '../harness/balanced-client.js';
import { getJson } from '../harness/http-json.js';
import { createNetnsLan, netnsUnavailable, type LanMachine, type NetnsLan } from '../harness/netns-lab.js';
import { connect, queryOnce, type Endpoint, type Login } from '../harness/pg-clients.js';
import { canConnect } from '../harness/ports.js';
import { waitFor, waitUntil } from '../harness/poll.js';
import { killAllUnder, postmastersUnder, signal } from '../harness/proc-scan.js';
import { installRelease, installedRelease, RELEASE_VERSION, requireRelease, type Component } from '../harness/release.js';
import { UnitRunner } from '../harness/unit-runner.js';
import type { HostJson, RouteTableJson, RouterHealthJson } from '../harness/views.js';

/** The LAN 10.231.43.0/24 (no other test uses 43, as a LAN, a lab or a loopback block). */
const LAN = 43;
const HOSTS = ['h1', 'h2', 'h3'] as const;
const ROUTERS = ['r1', 'r2'] as const;
const GRPC_PORT = 7400;
const PG_PORT = 5432;
const CANCEL_PORT = 6432;
const AGENT_OPS_PORT = 9187;
const ROUTER_OPS_PORT = 9188;
const TENANT = 'shop';
const PASSWORD = 'shop-secret-42';
/** A tenant with a replica on another host (its primary is fenced if it loses the coordinator for longer than the agent lease). */
const REPLICATED = 'ledger';
const READY_MS = 60_000;

const unavailable = netnsUnavailable({ iptables: false });
if (unavailable !== undefined) {
  console.warn(`\n!!!!! DEPLOYMENT SCENARIO SKIPPED: ${unavailable} (it needs root or CAP_NET_ADMIN: ip netns, veth, bridge) !!!!!\n`);
}

/** A machine of the guide: its namespace and address, its root directory, its units. */
interface Machine extends LanMachine {
  root: string;
  units: Map<string, UnitRunner>;
}

describe.skipIf(unavailable !== undefined)('deployment guide on six machines (network namespaces)', () => {
  let lan: NetnsLan | undefined;
  let root = '';
  const machines = new Map<string, Machine>();
  let workstation = '';
  const m = (name: string): Machine => {
    const found = machines.get(name);
    if (!found) throw new Error(`machine ${name} is not set up (did beforeAll fail?)`);
    return found;
  };
  const unit = (machine: string, name: string): UnitRunner => {
    const u = m(machine).units.get(name);
    if (!u) throw new Error(`no unit ${name} on ${machine}`);
    return u;
  };
  const allUnits = (): Array<[string, UnitRunner]> =>
    [...machines.values()].flatMap((x) => [...x.units.entries()].map(([n, u]) => [`${x.name}/${n}`, u] as [string, UnitRunner]));
  const logs = (lines = 40): string =>
    allUnits()
      .map(([n, u]) => `----- ${n} -----\n${u.tail(lines)}`)
      .join('\n');

  /** Writes <machine>/etc/pgs/<file> (an EnvironmentFile) from key/value pairs. */
  const writeEnv = (machine: string, file: string, values: Record<string, string>): void => {
    const dir = path.join(m(machine).root, 'etc', 'pgs');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, file),
      Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
  };

  /** The installed pgsctl of the workstation, -o json, with the workstation's config file. */
  const pgsctl = (args: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = execFile(
        path.join(workstation, 'opt', 'pgs', 'bin', 'pgsctl'),
        ['-o', 'json', ...args],
        {
          timeout: 60_000,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workstation, XDG_CONFIG_HOME: path.join(workstation, 'config'), NO_COLOR: '1' },
        },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') reject(err);
          else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
        },
      );
      child.stdin?.end(input ?? '');
    });
  const pgsctlJson = async <T>(args: readonly string[], input?: string): Promise<T> => {
    const r = await pgsctl(args, input);
    if (r.code !== 0) throw new Error(`pgsctl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  };

  const coordinatorAddress = (): string => `${m('coordinator').address}:${GRPC_PORT}`;
  const routerEndpoint = (r: string): Endpoint => ({ host: m(r).address, port: PG_PORT });
  const login: Login = { user: `${TENANT}.${TENANT}`, password: PASSWORD, database: TENANT };
  const replicatedLogin: Login = { user: `${REPLICATED}.${REPLICATED}`, password: PASSWORD, database: REPLICATED };

  const agentHealth = async (h: string): Promise<{ coordinatorConnected: boolean }> => {
    const { body } = await getJson<{ coordinatorConnected: boolean }>(`http://${m(h).address}:${AGENT_OPS_PORT}/healthz`);
    if (!body) throw new Error(`agent ${h}: /healthz is not JSON`);
    return body;
  };
  const routerHealth = async (r: string): Promise<RouterHealthJson> => {
    const { body } = await getJson<RouterHealthJson>(`http://${m(r).address}:${ROUTER_OPS_PORT}/healthz`);
    if (!body) throw new Error(`router ${r}: /healthz is not JSON`);
    return body;
  };
  const hostStates = async (): Promise<Record<string, string>> =>
    Object.fromEntries((await pgsctlJson<HostJson[]>(['host', 'list'])).map((h) => [h.id, h.state]));
  const running = (u: UnitRunner, what: string): void => {
    if (!u.running && u.failureRestarts === 0) throw new Error(`${what} is not running: ${u.tail(20)}`);
  };
  const agentReady = async (h: string): Promise<void> => {
    await waitFor(
      `agent ${h} connected to the coordinator`,
      async () => {
        running(unit(h, 'pgs-agent'), `agent ${h}`);
        return (await agentHealth(h)).coordinatorConnected ? true : undefined;
      },
      { timeoutMs: READY_MS, intervalMs: 100 },
    );
    await waitUntil(`host ${h} READY`, hostStates, (s) => s[h] === 'READY', { timeoutMs: READY_MS, intervalMs: 200 });
  };
  const routerReady = async (r: string): Promise<void> => {
    await waitFor(
      `router ${r} with a live route feed`,
      async () => {
        running(unit(r, 'pgs-router'), `router ${r}`);
        const h = await routerHealth(r);
        return h.ok && h.cache.connected ? true : undefined;
      },
      { timeoutMs: READY_MS, intervalMs: 100 },
    );
  };
  const coordinatorReady = (): Promise<unknown> =>
    waitFor(
      'coordinator answering pgsctl status',
      async () => {
        running(unit('coordinator', 'pgs-coordinator'), 'coordinator');
        return (await pgsctl(['status'])).code === 0 ? true : undefined;
      },
      { timeoutMs: READY_MS, intervalMs: 200 },
    );
  const postmasters = (h: string): number[] =>
    postmastersUnder(path.join(m(h).root, 'var', 'lib', 'pgs', 'agent'))
      .map((p) => p.pid)
      .sort();

  beforeAll(() => {
    requireRelease(['coordinator', 'agent', 'router', 'pgsctl']);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-e2e-deploy-'));
    // The postgres OS user must traverse to the hosts' data roots.
    fs.chmodSync(root, 0o755);
    fs.mkdirSync(path.join(root, 'logs'));
    lan = createNetnsLan(LAN, ['coordinator', ...HOSTS, ...ROUTERS]);
    for (const lm of lan.machines) {
      const dir = path.join(root, lm.name);
      fs.mkdirSync(dir, { mode: 0o755 });
      machines.set(lm.name, { ...lm, root: dir, units: new Map() });
    }
    workstation = path.join(root, 'workstation');
    fs.mkdirSync(workstation, { mode: 0o700 });
  });

  beforeEach((ctx) => {
    ctx.onTestFailed(() => console.error(`\n===== logs of the deployment (test "${ctx.task.name}" failed) =====\n${logs(60)}\n`));
  });

  afterAll(async () => {
    try {
      // systemctl stop, in the reverse order of the guide's start; then the instances agents leave running.
      for (const name of [...ROUTERS, ...HOSTS, 'coordinator']) for (const u of machines.get(name)?.units.values() ?? []) await u.stop();
      for (const h of HOSTS) if (machines.has(h)) for (const pid of postmasters(h)) signal(pid, 'SIGINT');
      await waitFor('postmasters to stop', () => (HOSTS.every((h) => !machines.has(h) || postmasters(h).length === 0) ? true : undefined), {
        timeoutMs: 15_000,
      }).catch(() => undefined);
      if (root) await killAllUnder(root);
    } finally {
      lan?.teardown();
      if (root && process.env.PGS_E2E_KEEP !== '1') fs.rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);

  it('installs one tarball per component on each machine; every command answers --version and --help', async () => {
    const install: Record<string, Component[]> = {
      coordinator: ['coordinator', 'pgsctl'],
      ...Object.fromEntries(HOSTS.map((h) => [h, ['agent']])),
      ...Object.fromEntries(ROUTERS.map((r) => [r, ['router']])),
    };
    for (const [name, components] of Object.entries(install)) installRelease(m(name).root, components);
    installRelease(workstation, ['pgsctl']);
    const commands: Array<[string, string]> = [
      ['coordinator', 'pgs-coordinator'],
      ['coordinator', 'pgsctl'],
      ['h1', 'pgs-agent'],
      ['r1', 'pgs-router'],
    ];
    for (const [machine, command] of commands) {
      const bin = path.join(m(machine).root, 'opt', 'pgs', 'bin', command);
      const version = await run(bin, ['--version']);
      expect(version).toEqual({
        code: 0,
        stdout: expect.stringMatching(new RegExp(`^${command} ${RELEASE_VERSION.replaceAll('.', '\\.')} `)) as unknown,
        stderr: '',
      });
      const help = await run(bin, ['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(command === 'pgsctl' ? /Usage: pgsctl/ : /--log-level/);
    }
    // What each machine got: only its component (and the native module where that component needs it).
    expect(fs.readdirSync(path.join(m('h1').root, 'opt', 'pgs', 'lib')).sort()).toEqual(['agent', 'package.json']);
    expect(fs.readdirSync(path.join(m('r1').root, 'opt', 'pgs', 'lib')).sort()).toEqual(['node_modules', 'package.json', 'router']);
  });

  it('first start: the coordinator writes its CA and admin token; agents and routers join with single-use tokens', async () => {
    const c = m('coordinator');
    const dataDir = path.join(c.root, 'var', 'lib', 'pgs', 'coordinator');
    writeEnv('coordinator', 'coordinator.env', {
      PGS_GRPC_LISTEN: coordinatorAddress(),
      PGS_HTTP_LISTEN: '127.0.0.1:7480',
      PGS_DATA_DIR: dataDir,
      // The guide's settings for fleets with replicated tenants: a coordinator restart (stop, start,
      // agents reconnecting) must fit in the agent lease, or their primaries fence themselves.
      PGS_AGENT_LEASE: '10s',
      PGS_HOST_TTL: '6s',
      PGS_HOST_DOWN_GRACE: '6s',
    });
    const coordinator = new UnitRunner({
      name: 'pgs-coordinator',
      unitFile: path.join(c.root, 'opt', 'pgs', 'share', 'pgs', 'systemd', 'pgs-coordinator.service'),
      machineRoot: c.root,
      netns: c.netns,
      logFile: path.join(root, 'logs', 'coordinator.log'),
    });
    c.units.set('pgs-coordinator', coordinator);
    coordinator.start();
    const tokenFile = path.join(dataDir, 'admin.token');
    const caFile = path.join(dataDir, 'ca.pem');
    await waitFor('admin.token and ca.pem in the data dir', () => (fs.existsSync(tokenFile) && fs.existsSync(caFile) ? true : undefined), {
      timeoutMs: READY_MS,
    });
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    // The operator copies both to the workstation (scp) and points pgsctl's config file at them.
    const cfgDir = path.join(workstation, 'config', 'pgs');
    fs.mkdirSync(cfgDir, { recursive: true });
    fs.copyFileSync(tokenFile, path.join(cfgDir, 'admin.token'));
    fs.copyFileSync(caFile, path.join(cfgDir, 'ca.pem'));
    fs.writeFileSync(
      path.join(cfgDir, 'config.json'),
      JSON.stringify({ coordinator: coordinatorAddress(), ca: path.join(cfgDir, 'ca.pem'), tokenFile: path.join(cfgDir, 'admin.token') }),
    );
    await coordinatorReady();

    for (const [i, h] of HOSTS.entries()) {
      const { token } = await pgsctlJson<{ token: string }>(['token', 'create', '--kind', 'host', '--id', h, '--ttl', '1h']);
      const dataRoot = path.join(m(h).root, 'var', 'lib', 'pgs', 'agent');
      writeEnv(h, 'agent.env', {
        PGS_HOST_ID: h,
        PGS_ADDRESS: m(h).address,
        PGS_COORDINATOR: coordinatorAddress(),
        PGS_DATA_ROOT: dataRoot,
        PGS_ALLOW_CIDRS: lan?.cidr ?? '',
        PGS_PORT_RANGE: '20000-20099',
        PGS_LABELS: `zone=${String.fromCharCode(97 + i)}`,
        PGS_OPS_LISTEN: `${m(h).address}:${AGENT_OPS_PORT}`,
        PGS_RUNTIME: 'process',
        PGS_CPU: '4',
        PGS_MEMORY: '8Gi',
        PGS_DISK: '100Gi',
        // One ready copy of the template instead of 8: three hosts share this machine's two cores.
        PGS_SPARE_CLONES: '1',
        // The guide's setting: back within a second of the coordinator's return, not after a 10 s backoff.
        PGS_RECONNECT_MAX: '1s',
      });
      writeEnv(h, 'agent.join.env', { PGS_JOIN_TOKEN: token });
      const u = new UnitRunner({
        name: `pgs-agent@${h}`,
        unitFile: path.join(m(h).root, 'opt', 'pgs', 'share', 'pgs', 'systemd', 'pgs-agent.service'),
        machineRoot: m(h).root,
        netns: m(h).netns,
        logFile: path.join(root, 'logs', `agent-${h}.log`),
      });
      m(h).units.set('pgs-agent', u);
      u.start();
    }
    for (const r of ROUTERS) {
      const { token } = await pgsctlJson<{ token: string }>(['token', 'create', '--kind', 'router', '--id', r, '--ttl', '1h']);
      writeEnv(r, 'router.env', {
        PGS_ROUTER_ID: r,
        PGS_LISTEN: `${m(r).address}:${PG_PORT}`,
        PGS_COORDINATOR: coordinatorAddress(),
        PGS_CACHE_PATH: path.join(m(r).root, 'var', 'lib', 'pgs', 'router', 'routes.db'),
        PGS_CANCEL_LISTEN: `${m(r).address}:${CANCEL_PORT}`,
        PGS_CANCEL_SECRET: 'deploy-test-cancel-secret-shared-by-routers',
        PGS_OPS_LISTEN: `${m(r).address}:${ROUTER_OPS_PORT}`,
        PGS_SHUTDOWN_TIMEOUT: '10s',
      });
      writeEnv(r, 'router.join.env', { PGS_JOIN_TOKEN: token });
      const u = new UnitRunner({
        name: `pgs-router@${r}`,
        unitFile: path.join(m(r).root, 'opt', 'pgs', 'share', 'pgs', 'systemd', 'pgs-router.service'),
        machineRoot: m(r).root,
        netns: m(r).netns,
        logFile: path.join(root, 'logs', `router-${r}.log`),
      });
      m(r).units.set('pgs-router', u);
      u.start();
    }
    await Promise.all([...HOSTS.map(agentReady), ...ROUTERS.map(routerReady)]);
    // Joined: the one-time tokens go (restarts use the saved certificates).
    for (const h of HOSTS) fs.rmSync(path.join(m(h).root, 'etc', 'pgs', 'agent.join.env'));
    for (const r of ROUTERS) fs.rmSync(path.join(m(r).root, 'etc', 'pgs', 'router.join.env'));
    const hosts = await pgsctlJson<HostJson[]>(['host', 'list']);
    expect(hosts.map((h) => [h.id, h.address, h.state]).sort()).toEqual(HOSTS.map((h) => [h, m(h).address, 'READY']));
    const routes = await pgsctlJson<RouteTableJson>(['route', 'list']);
    expect(routes.routers.map((r) => r.routerId).sort()).toEqual([...ROUTERS]);
  }, 150_000);

  it('a tenant created with pgsctl, access enabled, answers through both routers', async () => {
    await pgsctlJson(['tenant', 'create', TENANT, '--password-stdin', '--wait', '--timeout', '90s'], PASSWORD);
    await pgsctlJson(['tenant', 'access', 'enable', TENANT]);
    for (const r of ROUTERS) {
      await waitUntil(
        `${TENANT} served through ${r}`,
        async () => queryOnce<{ n: number }>(routerEndpoint(r), login, 'select 1 as n').catch((err: unknown) => (err as Error).message),
        (rows) => Array.isArray(rows),
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    }
    await queryOnce(routerEndpoint('r1'), login, 'create table ops (id bigint primary key, via text not null, at timestamptz not null default now())');
    const seen = await queryOnce<{ n: string }>(routerEndpoint('r2'), login, "insert into ops (id, via) values (0, 'setup') returning id::text as n");
    expect(seen).toEqual([{ n: '0' }]);
    await pgsctlJson(['tenant', 'create', REPLICATED, '--replicas', '1', '--access', 'enabled', '--password-stdin', '--wait', '--timeout', '90s'], PASSWORD);
    await waitUntil(
      `${REPLICATED} served through r1`,
      async () =>
        queryOnce(routerEndpoint('r1'), replicatedLogin, 'create table ops (id bigint primary key, via text not null)').catch(
          (err: unknown) => (err as Error).message,
        ),
      (rows) => Array.isArray(rows),
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  }, 120_000);

  it('the supervisor restarts a killed agent (Restart=on-failure), which adopts its running instance', async () => {
    const { tenant } = await pgsctlJson<{ tenant: { placements: Array<{ hostId: string }> } }>(['tenant', 'get', TENANT]);
    const h = tenant.placements[0]?.hostId ?? '';
    expect(HOSTS).toContain(h);
    const u = unit(h, 'pgs-agent');
    const before = postmasters(h);
    expect(before.length).toBeGreaterThanOrEqual(1);
    signal(u.pid as number, 'SIGKILL');
    await waitFor(`agent ${h} restarted by its supervisor`, () => (u.failureRestarts === 1 && u.running ? true : undefined), { timeoutMs: 10_000 });
    await agentReady(h);
    expect(postmasters(h)).toEqual(before);
  }, 60_000);

  it('rolling upgrade (coordinator, then agents, then routers, one at a time) under a load-balanced client: no failed operation', async () => {
    const endpoints = ROUTERS.map(routerEndpoint);
    const clients = [0, 1].map(
      (i) => new BalancedClient(endpoints, login, { table: 'ops', idBase: (i + 1) * 1_000_000, connectTimeoutMs: 5_000, pauseMs: 20 }),
    );
    const replicated = new BalancedClient(endpoints, replicatedLogin, { table: 'ops', idBase: 0, connectTimeoutMs: 5_000, pauseMs: 20 });
    const phases: Array<{ phase: string; ms: number; stopMs: number; failedAttempts: number; failedOps: number }> = [];
    const totals = (): { attempts: number; ops: number } => ({
      attempts: clients.reduce((n, c) => n + c.failedAttempts.length, 0),
      ops: clients.reduce((n, c) => n + c.failedOps.length, 0),
    });
    const upgrade = async (machine: string, unitName: string, ready: () => Promise<unknown>, whileStopping?: () => Promise<void>): Promise<void> => {
      const before = totals();
      const started = Date.now();
      // The new release beside the old one, then systemctl stop, switch the symlink, systemctl start.
      installRelease(
        m(machine).root,
        machine === 'coordinator' ? ['coordinator', 'pgsctl'] : machine.startsWith('h') ? ['agent'] : ['router'],
        `pgs-${RELEASE_VERSION}-next`,
      );
      const u = unit(machine, unitName);
      const stopping = u.stop();
      await whileStopping?.();
      const { stopMs, code } = await stopping;
      expect(code, `${unitName}@${machine} did not stop cleanly; its log:\n${u.tail(60)}`).toBe(0);
      u.start();
      await ready();
      expect(installedRelease(m(machine).root)).toBe(`pgs-${RELEASE_VERSION}-next`);
      const after = totals();
      phases.push({
        phase: `${unitName}@${machine}`,
        ms: Date.now() - started,
        stopMs,
        failedAttempts: after.attempts - before.attempts,
        failedOps: after.ops - before.ops,
      });
    };

    for (const c of clients) c.start();
    replicated.start();
    try {
      await waitFor('the clients writing', () => (clients.every((c) => c.acked.length >= 5) ? true : undefined), { timeoutMs: 15_000 });
      await upgrade('coordinator', 'pgs-coordinator', async () => {
        await coordinatorReady();
        await Promise.all([...HOSTS.map(agentReady), ...ROUTERS.map(routerReady)]);
      });
      for (const h of HOSTS) {
        const instances = postmasters(h);
        await upgrade(h, 'pgs-agent', () => agentReady(h));
        // Restarted under its running instances: the same postmasters, adopted.
        expect(postmasters(h)).toEqual(instances);
      }
      // A session open on r1 when it is told to stop: r1 refuses new connections at once, yet the
      // session keeps working until its client ends it, and only then does r1 exit.
      const session = await connect(routerEndpoint('r1'), login);
      let drained: { refusedNewAfterMs: number; sessionQueried: boolean } | undefined;
      await upgrade(
        'r1',
        'pgs-router',
        () => routerReady('r1'),
        async () => {
          const signalled = Date.now();
          const r1 = routerEndpoint('r1');
          await waitUntil(
            'r1 refusing new connections while it drains',
            () => canConnect(r1.host, r1.port, 500),
            (open) => !open,
            { timeoutMs: 10_000, intervalMs: 20 },
          );
          const refusedNewAfterMs = Date.now() - signalled;
          expect(unit('r1', 'pgs-router').running).toBe(true);
          const rows = await session.query<{ n: number }>('select 42 as n');
          drained = { refusedNewAfterMs, sessionQueried: rows.rows[0]?.n === 42 };
          await session.end();
        },
      );
      expect(drained?.sessionQueried).toBe(true);
      console.log(
        `[deploy] r1 refused new connections ${drained?.refusedNewAfterMs} ms after SIGTERM; the session open on it still answered, and r1 exited once it ended`,
      );
      await upgrade('r2', 'pgs-router', () => routerReady('r2'));
      // A little traffic on the fully upgraded fleet, through both routers.
      const acked = clients.reduce((n, c) => n + c.acked.length, 0);
      await waitFor('more writes after the upgrade', () => (clients.reduce((n, c) => n + c.acked.length, 0) >= acked + 10 ? true : undefined), {
        timeoutMs: 15_000,
      });
    } finally {
      await Promise.all([...clients, replicated].map((c) => c.stop()));
    }
    console.log(
      `[deploy] replicated tenant ${REPLICATED}: ${replicated.operations} operations, ${replicated.acked.length} acknowledged, ${replicated.failedAttempts.length} retried attempts, ${replicated.failedOps.length} failed: ${JSON.stringify(replicated.failedOps.slice(0, 3))}`,
    );

    const acked = clients.flatMap((c) => c.acked);
    const operations = clients.reduce((n, c) => n + c.operations, 0);
    const failedAttempts = clients.flatMap((c) => c.failedAttempts);
    console.log(
      `\n[deploy] rolling upgrade: ${operations} operations (new connection each), ${acked.length} acknowledged, ${failedAttempts.length} first attempts failed and were retried on the other router, ${totals().ops} operations failed on both routers`,
    );
    for (const p of phases)
      console.log(
        `[deploy]   ${p.phase.padEnd(28)} ${String(p.ms).padStart(6)} ms (stop ${p.stopMs} ms): ${p.failedAttempts} retried attempt(s), ${p.failedOps} failed operation(s)`,
      );
    const codes = new Map<string, number>();
    for (const f of failedAttempts) codes.set(`${f.code} ${f.message.slice(0, 80)}`, (codes.get(`${f.code} ${f.message.slice(0, 80)}`) ?? 0) + 1);
    for (const [what, n] of codes) console.log(`[deploy]   retried: ${n} x ${what}`);

    expect(clients.flatMap((c) => c.failedOps)).toEqual([]);
    // The replicated tenant too: its primary kept its lease through the coordinator's restart.
    expect(replicated.failedOps).toEqual([]);
    const replicatedRows = await queryOnce<{ n: string }>(
      routerEndpoint('r2'),
      replicatedLogin,
      'select count(*)::text as n from ops where id = any($1::bigint[])',
      [replicated.acked],
    );
    expect(Number(replicatedRows[0]?.n)).toBe(replicated.acked.length);
    // Every acknowledged insert is there.
    const rows = await queryOnce<{ n: string }>(routerEndpoint('r1'), login, 'select count(*)::text as n from ops where id = any($1::bigint[])', [acked]);
    expect(Number(rows[0]?.n)).toBe(acked.length);
    // Both routers served during the run.
    const via = await queryOnce<{ via: string }>(routerEndpoint('r2'), login, "select distinct via from ops where via <> 'setup' order by via");
    expect(via.map((v) => v.via)).toEqual(endpoints.map((e) => `${e.host}:${e.port}`).sort());
    // No unit needed its supervisor during the upgrade (the agent killed on purpose above is the one restart).
    expect(allUnits().reduce((n, [, u]) => n + u.failureRestarts, 0)).toBe(1);
  }, 240_000);
});

/** Runs a command to completion (no shell); never throws for a non-zero exit. */
function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}
