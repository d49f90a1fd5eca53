/**
 * A coordinator on a PostgreSQL store that other coordinators share. It opens the store fenced by
 * its leader election and then takes one of two shapes, switching as the lease says:
 * - leading: the whole coordinator (startCoordinator) over the shared store, at the lease's
 *   epoch; every commit is checked against the lease in the same transaction, so the moment the
 *   lease is lost nothing more commits, and the coordinator is then stopped;
 * - following: reads and the route and event watches served from the store (what the leader
 *   commits, read back by revision), every other call sent to the leader.
 * The addresses are bound once and stay bound from term to term (leaderless calls are refused
 * towards the leader meanwhile), so a take-over costs no client a refused connection. A new term
 * always builds the coordinator's services afresh from the store: the other leader changed it
 * meanwhile, and nothing kept in memory from an earlier term can be trusted.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { ConfigError, type Logger } from '@pgs/service-kit';
import { leaseTimingsFor } from '@pgs/tenancy';
import { splitHostPort, type CoordinatorConfig } from '../config.js';
import { startCoordinator, type RunningCoordinator } from '../coordinator.js';
import { serverCredentials } from '../transport/grpc-credentials.js';
import { coordinatorKeyRing } from '../services/secret-keys.js';
import { loadFleetPki, type FleetPki } from '../security/fleet-pki.js';
import type { Store } from '../store/contract.js';
import { redactStoreUrl, splitStoreUrl } from '../store/postgres/pg-connection.js';
import { openPostgresStore } from '../store/postgres/pg-store.js';
import { electionFence, type LeaderElection } from './leader-election.js';
import { startLeaseThread } from './lease-thread.js';
import { startServingShell, type ServingShell } from './serving-shell.js';
import type { FedChanges, FeedSource } from '../transport/feed-source.js';
import type { FollowerFeed } from '../store/postgres/follower-feed.js';

/** A running coordinator of several. */
export interface HaCoordinator {
  readonly election: LeaderElection;
  /** The whole coordinator while this one leads. */
  leader(): RunningCoordinator | undefined;
  stop(): Promise<void>;
}

/** How long a term that failed to start waits before trying again (its ports may still be closing). */
const RETRY_MS = 500;

/** Starts the election and serves as leader or follower, whichever the lease says. */
export async function startHaCoordinator(
  config: CoordinatorConfig,
  url: string,
  log: Logger,
  clock: () => number = Date.now,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<HaCoordinator> {
  const grpc = splitHostPort(config.grpcListen, '--grpc-listen');
  const http = splitHostPort(config.httpListen, '--http-listen');
  if (grpc.port === 0 || http.port === 0) {
    throw new ConfigError(
      'with a PostgreSQL store the coordinator needs fixed ports (--grpc-listen and --http-listen not :0): followers name the leader by its address',
    );
  }
  // The data dir holds no store here, only what this process writes for its operators (ca.pem, the
  // first admin token unless --admin-token-file says elsewhere).
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const self = config.advertiseAddress || config.grpcListen;
  const holder = `${os.hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  const urls = splitStoreUrl(url);
  const elected: { election?: LeaderElection } = {};
  const store = await openPostgresStore({
    url,
    routeHistory: config.routeHistory,
    log: log.child({ component: 'store' }),
    fence: () => (elected.election ? electionFence(elected.election)() : undefined),
  });
  log.info({ store: redactStoreUrl(url), schemaVersion: store.schemaVersion, holder, advertise: self }, 'PostgreSQL store opened; electing a leader');
  const timings = leaseTimingsFor(config.leaderLease);
  const el = startLeaseThread({ holder, address: self, urls, timings, log: log.child({ component: 'lease' }) });
  elected.election = el;

  // Bound once (as soon as TLS can be served) and handed from term to term: clients never see the
  // addresses close at a take-over.
  let shell: ServingShell | undefined;
  let pki: FleetPki | undefined;
  let term: { coordinator: RunningCoordinator; epoch: number | undefined; feed?: FollowerFeed } | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  let steppedDownAt: number | undefined;

  const ensureShell = async (): Promise<ServingShell | undefined> => {
    if (shell) return shell;
    const tls = await shellCredentials(
      config,
      store,
      env,
      log,
      clock,
      () => stopped,
      () => el.current().role === 'leader',
    );
    if (!tls || stopped) {
      tls?.pki?.stop();
      return undefined;
    }
    pki = tls.pki;
    shell = await startServingShell({
      grpcListen: config.grpcListen,
      httpHost: http.host,
      httpPort: http.port,
      credentials: tls.credentials,
      self,
      log: log.child({ component: 'shell' }),
    });
    return shell;
  };

  const stopTerm = async (): Promise<void> => {
    const was = term;
    term = undefined;
    if (!was) return;
    if (was.epoch !== undefined) log.warn({ epoch: was.epoch }, 'stopping the leader coordinator');
    await was.feed?.stop();
    await was.coordinator.stop().catch((err: unknown) => log.error({ err }, 'the coordinator term did not stop cleanly'));
  };

  /** A following term: reads and watches served from the store, fed by what the leader commits. */
  const follow = async (on: ServingShell): Promise<void> => {
    const listeners = new Set<(c: FedChanges) => void>();
    const source: FeedSource = (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
    const feed = await store.follow((changes) => {
      for (const l of listeners) l(changes);
    });
    try {
      const coordinator = await startCoordinator(config, log.child({ role: 'follower' }), clock, env, { store, shell: on, pki, feed: source });
      term = { coordinator, epoch: undefined, feed };
    } catch (err) {
      await feed.stop();
      throw err;
    }
  };

  const apply = async (): Promise<void> => {
    if (stopped) return;
    const now = el.current();
    shell?.setLeader(now.role === 'leader' ? self : now.leader?.address);
    if (now.role === 'leader') {
      steppedDownAt = undefined;
      if (term?.epoch === now.epoch) return;
      const on = await ensureShell();
      if (!on) return;
      // The addresses stay bound and the PKI loaded; the follower's term gives way to a leader's,
      // built from the store (another leader changed it meanwhile: nothing kept in memory from an
      // earlier term is trusted). Watchers of the follower's term reconnect to the same address
      // and resume by revision.
      const began = performance.now();
      await stopTerm();
      const coordinator = await startCoordinator(config, log.child({ epoch: now.epoch }), clock, env, { store, leaderEpoch: now.epoch, shell: on, pki });
      log.info({ epoch: now.epoch, ms: Math.round(performance.now() - began) }, 'leading: the term serves every call');
      // The lease may have gone while it started: then it stops at once (it could not commit anyway).
      term = { coordinator, epoch: now.epoch };
      if (el.leaderEpoch() !== now.epoch) await apply();
      return;
    }
    // A leader that missed its local renewal deadline under load (its lease may well still be live)
    // keeps its coordinator for one lease length: its commits fail the fence meanwhile, and a
    // renewal at the same epoch resumes it without rebuilding everything (a rebuild under load is
    // what makes the next deadline slip). Another coordinator known to lead, or no lease back within
    // that time, stops it.
    if (term?.epoch !== undefined) {
      const otherLeads = now.leader !== undefined && now.leader.epoch !== term.epoch;
      const since = (steppedDownAt ??= Date.now());
      const left = timings.ttlMs - (Date.now() - since);
      if (!otherLeads && left > 0) {
        clearTimeout(grace);
        grace = setTimeout(schedule, left);
        grace.unref();
        return;
      }
    }
    steppedDownAt = undefined;
    if (term?.epoch === undefined && term) return;
    await stopTerm();
    const on = await ensureShell();
    if (!on || stopped || el.current().role === 'leader') return;
    on.setLeader(now.leader?.address);
    await follow(on);
  };

  let chain = Promise.resolve();
  const schedule = (): void => {
    chain = chain.then(apply).catch((err: unknown) => {
      log.error({ err }, 'cannot serve in the current role; trying again');
      clearTimeout(retry);
      retry = setTimeout(schedule, RETRY_MS);
      retry.unref();
    });
  };
  el.onChange(schedule);
  schedule();

  return {
    election: el,
    leader: () => (term?.epoch !== undefined ? term.coordinator : undefined),
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      clearTimeout(grace);
      await chain;
      await stopTerm();
      await shell?.stop();
      pki?.stop();
      // Released last: a follower takes over while this process is already out of the way.
      await el.stop();
      await store.close();
    },
  };
}

/**
 * The TLS of the shell: none with --insecure, the operator's own PKI, or a server certificate from
 * the fleet CA in the store. Only a leader creates that CA (on the fleet's first start); a follower
 * waits for it (its write would be refused), until it leads itself (`leads`) or `giveUp` says so.
 */
async function shellCredentials(
  config: CoordinatorConfig,
  store: Store,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  clock: () => number,
  giveUp: () => boolean,
  leads: () => boolean,
): Promise<{ pki: FleetPki | undefined; credentials: ReturnType<typeof serverCredentials> } | undefined> {
  if (config.insecure) return { pki: undefined, credentials: serverCredentials(undefined, log) };
  const own = config.tlsCa !== '' ? { caFile: config.tlsCa, certFile: config.tlsCert, keyFile: config.tlsKey } : undefined;
  if (!own) {
    while (!leads() && !(await store.read.secrets.getCa())) {
      if (giveUp()) return undefined;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const keys = coordinatorKeyRing({ keyFile: config.secretKeyFile, dataDir: config.dataDir, env }, log);
  const grpcHost = splitHostPort(config.grpcListen, '--grpc-listen').host;
  const pki = await loadFleetPki({ store, keys, dataDir: config.dataDir, names: [grpcHost, ...config.tlsNames], files: own, clock, log });
  return { pki, credentials: serverCredentials(pki, log) };
}
