/**
 * Runs the steps of a major upgrade the coordinator sends (UpgradeSource on the old instance's
 * host, UpgradeTarget on the new one's). Each step is idempotent, so a step sent again after a
 * lost answer or a coordinator restart does no harm.
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { AgentError } from '../errors.js';
import type { AdminConnect, InstanceAdmin } from '../instance-admin.js';
import type { UpgradeSourceAction, UpgradeSourceOutcome, UpgradeTargetAction, UpgradeTargetOutcome } from '../model.js';
import type { UpgradeTools } from '../runtime/runtime.js';
import { blockWriters, cleanSource, inspectSource, prepareSource, tenantDatabases, unblockWriters, type WithDatabase } from './upgrade-source.js';
import {
  caughtUp,
  connectSource,
  copySchema,
  dropSubscription,
  hasUserObjects,
  readSequences,
  sourceWalPosition,
  subscribe,
  syncState,
  writeSequences,
  type SourceLink,
} from './upgrade-target.js';

/** What the runner needs from the agent. */
export interface UpgradeRunnerOptions extends UpgradeTools {
  admin: InstanceAdmin;
  /** How the admin reaches an instance (its socket dir, port and superuser, for psql). */
  connect: AdminConnect;
  log: Logger;
}

/** Catch-up is polled this often while the routers hold clients. */
const CATCH_UP_POLL_MS = 10;

/** Runs upgrade steps against this host's instances. */
export class UpgradeRunner {
  constructor(private readonly o: UpgradeRunnerOptions) {}

  private withDb(tenantId: string): WithDatabase {
    return (database, fn) => this.o.admin.withClient(tenantId, database, fn);
  }

  /** A step on the old instance. */
  async source(tenantId: string, a: UpgradeSourceAction): Promise<UpgradeSourceOutcome> {
    const withDb = this.withDb(tenantId);
    const databases = a.databases.length > 0 ? a.databases : await tenantDatabases(withDb);
    const out: UpgradeSourceOutcome = {
      major: 0,
      walLevel: '',
      largeObjects: [],
      unloggedTables: [],
      tablesWithoutIdentity: [],
      databases,
      sessionsEnded: 0,
      identityFullSet: [],
    };
    switch (a.step) {
      case 'inspect': {
        const facts = await inspectSource(withDb, databases);
        return {
          ...out,
          major: facts.major,
          walLevel: facts.walLevel,
          largeObjects: facts.largeObjects.map((l) => `${l.database}: ${l.count}`),
          unloggedTables: [...facts.unloggedTables],
          tablesWithoutIdentity: [...facts.tablesWithoutIdentity],
        };
      }
      case 'prepare': {
        const { identityFullSet } = await prepareSource(withDb, { databases, user: a.user, verifier: a.scramVerifier, identityFull: a.replicaIdentityFull });
        this.o.log.info({ tenantId, databases, identityFullSet }, 'upgrade: publications ready on the old instance');
        return { ...out, identityFullSet };
      }
      case 'blockWriters': {
        const sessionsEnded = await blockWriters(withDb, a.roles);
        this.o.log.warn({ tenantId, roles: a.roles, sessionsEnded }, 'upgrade: writers of the old instance blocked for the switch');
        return { ...out, sessionsEnded };
      }
      case 'unblockWriters':
        await unblockWriters(withDb, a.roles);
        this.o.log.warn({ tenantId, roles: a.roles }, 'upgrade: writers of the old instance allowed again');
        return out;
      case 'clean':
        await cleanSource(withDb, databases, a.user);
        return out;
    }
  }

  /** A step on the new instance. */
  async target(tenantId: string, a: UpgradeTargetAction): Promise<UpgradeTargetOutcome> {
    const tls = this.o.tls();
    const link: SourceLink = {
      host: a.source.address,
      port: a.source.port,
      user: a.source.user,
      password: a.source.password,
      sslMode: tls.caFile !== undefined ? 'verify-full' : 'prefer',
      ...(tls.caFile !== undefined ? { sslRootCert: tls.caFile } : {}),
    };
    const withDb = this.withDb(tenantId);
    const out: UpgradeTargetOutcome = { tables: 0, ready: 0, sourceLsn: '', sequences: 0 };
    if (a.databases.length === 0) throw new AgentError('UPGRADE_FAILED', 'an upgrade step on the new instance needs the databases to copy');
    switch (a.step) {
      case 'subscribe': {
        const binDir = this.o.clientBinDir(a.dumpMajor);
        if (!binDir) throw new AgentError('UPGRADE_FAILED', `this host has no pg_dump and psql of PostgreSQL ${a.dumpMajor} to copy the schema with`);
        const cfg = this.o.connect(tenantId, 'postgres');
        for (const database of a.databases) {
          // The schema once: the new instance was made empty for the upgrade, so user objects in it
          // mean an earlier attempt copied it (and maybe died before subscribing).
          const copied = await withDb(database, (c) => hasUserObjects(c));
          if (!copied)
            await copySchema({
              dumpBinDir: binDir,
              psqlBinDir: binDir,
              source: link,
              target: { socketDir: String(cfg.host), port: Number(cfg.port), user: String(cfg.user) },
              database,
              runAs: this.o.runAs,
              timeoutMs: a.timeoutMs > 0 ? a.timeoutMs : undefined,
            });
          await withDb(database, (c) => subscribe(c, link, database));
        }
        this.o.log.info({ tenantId, databases: a.databases }, 'upgrade: schema copied and subscribed on the new instance');
        return out;
      }
      case 'syncState': {
        for (const database of a.databases) {
          const s = await withDb(database, (c) => syncState(c, database));
          out.tables += s.tables;
          out.ready += s.ready;
        }
        return out;
      }
      case 'catchUp':
        return await this.catchUp(tenantId, link, a);
      case 'abandon':
        // An abandoned upgrade, or the cleanup after the switch moved the route here.
        for (const database of a.databases) {
          const r = await withDb(database, (c) => dropSubscription(c, database));
          if (r.detached)
            this.o.log.warn(
              { tenantId, database, reason: r.detached },
              'upgrade: the source was unreachable; the subscription let go of its slot there and was dropped',
            );
        }
        return out;
    }
  }

  /**
   * The switch: everything the source has applied here and sequences copied. The subscriptions
   * stay (the source no longer changes): dropping them is cleanup after the route moved (STEP_ABANDON),
   * not part of the time clients are held.
   */
  private async catchUp(tenantId: string, link: SourceLink, a: UpgradeTargetAction): Promise<UpgradeTargetOutcome> {
    const withDb = this.withDb(tenantId);
    const started = performance.now();
    const deadline = started + (a.timeoutMs > 0 ? a.timeoutMs : 30_000);
    const [first, ...rest] = a.databases as [string, ...string[]];
    let sequences = 0;
    let sequencesMs = 0;
    const copySequences = async (src: pg.Client, database: string): Promise<void> => {
      const values = await readSequences(src);
      if (values.length > 0) await withDb(database, (t) => writeSequences(t, values));
      sequences += values.length;
    };
    const close = (c: pg.Client): Promise<void> => c.end().catch((err: unknown) => this.o.log.debug({ tenantId, err }, 'closing the source connection failed'));
    // One connection serves the position, the first database's sequences and the wait (each new one
    // costs a TLS and SCRAM handshake). The writers are blocked, so the sequences are final: they are
    // copied while the subscriptions apply the last changes (logical replication leaves sequences alone).
    const src = await connectSource(link, first);
    let lsn: string;
    try {
      lsn = await sourceWalPosition(src);
      const at = lsn;
      // A handler at once: a failed copy must not be an unhandled rejection while the wait runs.
      let copyFailed: { err: unknown } | undefined;
      const copying = (async () => {
        const from = performance.now();
        await copySequences(src, first);
        for (const database of rest) {
          const s = await connectSource(link, database);
          try {
            await copySequences(s, database);
          } finally {
            await close(s);
          }
        }
        sequencesMs = performance.now() - from;
      })().catch((err: unknown) => {
        copyFailed = { err };
      });
      try {
        for (;;) {
          const c = await caughtUp(src, a.databases, at);
          if (c.done) break;
          if (performance.now() >= deadline)
            throw new AgentError(
              'NOT_CAUGHT_UP',
              `the subscriptions of ${c.behind.join(', ')} did not reach the source's position ${at} within ${Math.round(deadline - started)} ms`,
            );
          await new Promise((resolve) => setTimeout(resolve, CATCH_UP_POLL_MS));
        }
      } finally {
        // The copy ends before its connection closes.
        await copying;
      }
      if (copyFailed) throw copyFailed.err;
    } finally {
      await close(src);
    }
    this.o.log.warn(
      { tenantId, lsn, sequences, sequencesMs: Math.round(sequencesMs), durationMs: Math.round(performance.now() - started) },
      'upgrade: the new instance caught up with the old one',
    );
    return { tables: 0, ready: 0, sourceLsn: lsn, sequences };
  }
}
