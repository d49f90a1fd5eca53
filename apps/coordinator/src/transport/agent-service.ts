/**
 * AgentControlService.Connect: one bidirectional stream per host. The agent says Hello; the
 * coordinator registers the host (idempotent by id), answers Welcome and the full desired set (or,
 * to an agent that already holds it, a confirmation of what it holds), then follows heartbeats (liveness) and instance reports (realization) until the stream ends.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { AgentControlService, ConnectRequest, ConnectResponseSchema } from '@pgs/proto';
import { Code, RpcError, type ServiceImpl } from '@pgs/rpc';
import { validateHostId } from '@pgs/tenancy';
import { checkHostClaim, decisionError, principalOf } from '@pgs/security';
import type { AgentSession } from './agent-hub.js';
import { resyncQuorums, syncHostTenants, type CoordinatorContext } from '../services/context.js';
import { applyInstanceReports } from '../services/instance-reports.js';
import { splitReports } from '../services/report-split.js';
import {
  fromBackupResult,
  fromInitSqlResult,
  fromHello,
  fromInstanceStatus,
  toBackupRepository,
  type HelloView,
  type InstanceReportView,
} from './mappers/agent-mapper.js';
import { BackupScheduler } from '../services/backup-scheduler.js';
import { nextOrStop, StreamWork } from './stream-work.js';
import { WaitingReports } from '../services/report-merge.js';
import { InitSqlRunner } from '../services/init-sql-runner.js';
import type { HostRecord } from '../domain/model.js';
import { auditRefusal, callerOf } from '../security/access.js';

let nextSessionId = 1;

/** How long after the request side of a stream ended a cancellation still makes it a break, not a goodbye. */
const GOODBYE_CHECK_MS = 150;

/** Messages of one stream that may wait to be handled before the stream is read no further. */
const STREAM_WORK_LIMIT = 16;

/** How long an agent has to say Hello after opening the stream. */
const HELLO_TIMEOUT_MS = 10_000;

/** Registers or re-registers the host of a Hello; returns the stored host. */
export async function registerHost(ctx: CoordinatorContext, hello: HelloView): Promise<HostRecord> {
  const now = ctx.clock();
  // Before the write: the placements it may trigger pick hosts by the majors they run.
  ctx.versions.report(hello.hostId, hello.postgresMajors, hello.pgbackrestVersion);
  ctx.slots.report(hello.hostId, hello.instanceSlots);
  ctx.unchangedReports.forgetHost(hello.hostId);
  try {
    return await registerHostTx(ctx, hello, now);
  } catch (err) {
    // Noted inside the transaction that did not commit: apply this host's next reports in full.
    ctx.unchangedReports.forgetHost(hello.hostId);
    throw err;
  }
}

/** Whether two records of a host say the same but for the last heartbeat (kept in memory, Liveness). */
function sameRegistration(a: HostRecord, b: HostRecord): boolean {
  const labels = (h: HostRecord): string => JSON.stringify(Object.entries(h.labels).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return (
    a.id === b.id &&
    a.address === b.address &&
    a.state === b.state &&
    a.cordoned === b.cordoned &&
    a.draining === b.draining &&
    a.capacity.cpuMillis === b.capacity.cpuMillis &&
    a.capacity.memoryMib === b.capacity.memoryMib &&
    a.capacity.diskMib === b.capacity.diskMib &&
    a.runtime === b.runtime &&
    a.agentVersion === b.agentVersion &&
    a.registeredAt === b.registeredAt &&
    a.stateChangedAt === b.stateChangedAt &&
    a.generation === b.generation &&
    labels(a) === labels(b)
  );
}

/**
 * A Hello's writes share a group commit with the other Hellos and reports of the same turn (one
 * fsync for them all, not one each: a fleet's reconnect storm is a Hello from every host at once);
 * groups are bounded in time, so a Welcome waits for a few milliseconds of others' writes at most.
 */
async function registerHostTx(ctx: CoordinatorContext, hello: HelloView, now: number): Promise<HostRecord> {
  return await ctx.store.transaction(
    async (tx) => {
      const existing = await tx.hosts.get(hello.hostId);
      const host: HostRecord = {
        id: hello.hostId,
        address: hello.address,
        state: 'READY',
        cordoned: existing?.cordoned ?? false,
        draining: existing?.draining ?? false,
        capacity: hello.capacity,
        labels: hello.labels,
        runtime: hello.runtime,
        agentVersion: hello.agentVersion,
        lastHeartbeatAt: now,
        registeredAt: existing?.registeredAt ?? now,
        stateChangedAt: existing?.state === 'READY' ? existing.stateChangedAt : now,
        // Never below what the agent applied, or it would ignore our next desired set.
        generation: Math.max(existing?.generation ?? 0, hello.appliedGeneration),
      };
      // A host that stayed READY at the same address and says what it said before (a reconnect, the
      // storm after a coordinator restart) writes neither its row nor an event: nothing changed but
      // its last heartbeat, which lives in memory. Only its reports that change something are written.
      // Except when a failover found this host's primary gone with its agent: a coordinator restarted
      // later tells a return from that point by the stored time of this Hello (libs/tenancy stillGone).
      const steady = existing?.state === 'READY' && existing.address === host.address;
      const returnCounts = steady && (await tx.operations.list()).some((op) => op.oldPrimary === host.id && op.goneAt > 0);
      if (!(steady && sameRegistration(existing, host)) || returnCounts) {
        await tx.hosts.put(host);
        await tx.events.append(
          existing
            ? {
                time: now,
                principal: `host:${host.id}`,
                action: 'host.connected',
                hostId: host.id,
                message: `agent reconnected (was ${existing.state})`,
                details: { from: existing.state },
              }
            : {
                time: now,
                principal: `host:${host.id}`,
                action: 'host.registered',
                hostId: host.id,
                message: `host registered at ${host.address}`,
                details: { runtime: host.runtime },
              },
        );
        tx.record({ kind: 'room' });
      }
      // Such a host changes no tenant's derivation by itself either: only its reports that change
      // something stored are applied, and only their tenants are derived again.
      let reports = hello.instances;
      if (steady && reports.length > 0) {
        const split = await splitReports(tx, host.id, reports, ctx.health);
        for (const r of split.unchanged) {
          if (r.health) ctx.health.set(r.tenantId, host.id, r.health);
          ctx.unchangedReports.noteApplied(host.id, r, now);
        }
        reports = split.apply;
      }
      if (reports.length > 0) await applyInstanceReports(tx, host.id, reports, { now, health: ctx.health, retry: ctx.retry, retiring: ctx.retiring });
      if (!steady) await syncHostTenants(tx, ctx, host.id, `host:${host.id}`);
      // Its instances found gone count again (it may have started them): quorums that left them out go out again.
      const wasGone = ctx.gone.forgetHost(host.id);
      if (existing?.state === 'DOWN' || wasGone) await resyncQuorums(tx, ctx, host.id, now);
      return host;
    },
    { grouped: true },
  );
}

/**
 * Applies reports and acts on what they found. A report that repeats what was last applied for its
 * instance only refreshes the health cache; so does one that would change nothing stored (the first
 * report of an instance since start, typically: checked against the store, not derived again). The
 * rest are applied in one transaction that shares its commit with the other hosts' reports of the
 * same turn (reports are frequent and nobody waits on their commit).
 */
export async function onReports(ctx: CoordinatorContext, hostId: string, reports: InstanceReportView[], warnedOrphans: Set<string>): Promise<void> {
  const now = ctx.clock();
  const fresh: InstanceReportView[] = [];
  for (const r of reports) {
    if (ctx.unchangedReports.unchanged(hostId, r, now)) {
      if (r.health) ctx.health.set(r.tenantId, hostId, r.health);
    } else fresh.push(r);
  }
  if (fresh.length === 0) return;
  let outcome: Awaited<ReturnType<typeof applyInstanceReports>>;
  try {
    outcome = await ctx.store.transaction(
      async (tx) => {
        const split = await splitReports(tx, hostId, fresh, ctx.health);
        for (const r of split.unchanged) {
          if (r.health) ctx.health.set(r.tenantId, hostId, r.health);
          ctx.unchangedReports.noteApplied(hostId, r, now);
        }
        if (split.apply.length === 0) return { orphans: [], removed: [] };
        const found = await applyInstanceReports(tx, hostId, split.apply, { now, health: ctx.health, retry: ctx.retry, retiring: ctx.retiring });
        const skip = new Set([...found.orphans, ...found.removed.map((r) => r.tenantId)]);
        for (const r of split.apply) if (!skip.has(r.tenantId)) ctx.unchangedReports.noteApplied(hostId, r, now);
        return found;
      },
      { grouped: true },
    );
  } catch (err) {
    // Noted inside the transaction that did not commit: apply this host's next reports in full.
    ctx.unchangedReports.forgetHost(hostId);
    throw err;
  }
  for (const r of outcome.removed) ctx.health.delete(r.tenantId, r.hostId);
  for (const tenantId of outcome.orphans) {
    if (warnedOrphans.has(tenantId)) continue;
    warnedOrphans.add(tenantId);
    ctx.log.warn({ hostId, tenantId }, 'agent runs an instance the coordinator has no placement for; leaving it alone');
    await ctx.store.transaction((tx) =>
      tx.events.append({
        time: now,
        principal: `host:${hostId}`,
        action: 'host.orphan_instance',
        hostId,
        tenantId,
        outcome: 'FAILURE',
        message: 'the host runs an instance of a tenant not placed there; it is left alone (no data is deleted on a guess)',
      }),
    );
  }
}

/** The AgentControlService implementation. */
export function agentControlService(
  ctx: CoordinatorContext,
  onSessionsChanged: () => void = () => undefined,
  backups?: BackupScheduler,
  initSql?: InitSqlRunner,
): ServiceImpl<typeof AgentControlService> {
  return {
    async connect(requests, stream, call) {
      ctx.liveness.reconnecting(ctx.clock());
      const iterator = requests[Symbol.asyncIterator]();
      let helloTimer: NodeJS.Timeout | undefined;
      const first = await Promise.race([
        iterator.next(),
        new Promise<never>((_, reject) => {
          // Decided one turn later: after a long event-loop block the timer fires before the
          // sockets are read, and a hello that arrived in time must still win the race.
          helloTimer = setTimeout(
            () => setImmediate(() => reject(new RpcError(Code.DEADLINE_EXCEEDED, `no hello within ${HELLO_TIMEOUT_MS} ms`))),
            HELLO_TIMEOUT_MS,
          );
        }),
      ]).finally(() => clearTimeout(helloTimer));
      if (first.done) return;
      if (first.value.message.case !== 'hello')
        throw new RpcError(Code.FAILED_PRECONDITION, 'the first message on the agent stream must be hello', { errorCode: 'HELLO_EXPECTED' });
      const hello = fromHello(first.value.message.value);
      validateHostId(hello.hostId, 'hello.host_id');
      // An agent speaks only for the host its certificate names: a stolen agent certificate must not let it act for other hosts.
      const claim = checkHostClaim(principalOf(call), hello.hostId);
      if (!claim.allow) {
        ctx.log.warn(
          { hostId: hello.hostId, principal: callerOf(call), peer: call.peer, reason: claim.reason },
          'agent refused: host claim does not match its certificate',
        );
        await auditRefusal(ctx.store, {
          time: ctx.clock(),
          principal: callerOf(call),
          method: call.method,
          hostId: hello.hostId,
          reason: claim.reason,
          peer: call.peer,
        });
        throw decisionError(claim);
      }
      if (!hello.address)
        throw new RpcError(Code.INVALID_ARGUMENT, 'hello.address is required: the address tenant instances listen on', { details: { field: 'hello.address' } });
      const log = ctx.log.child({ component: 'agent-stream', hostId: hello.hostId });
      // Nothing more of this stream is read until its Welcome and full set are out: our delay, not the host's silence.
      ctx.liveness.handling(hello.hostId, ctx.clock());
      let host: HostRecord;
      try {
        host = await registerHost(ctx, hello);
      } catch (err) {
        ctx.liveness.reading(hello.hostId, ctx.clock());
        throw err;
      }
      ctx.liveness.seen(host.id, ctx.clock());
      ctx.liveness.helloed(host.id, ctx.clock());
      // During the start grace: its full set and the first report after it are still to be handled.
      ctx.liveness.catchingUp(host.id);
      let closed = false;
      // Closed by us or cancelled: the read loop stops waiting for the next message.
      const stopReading = new AbortController();
      const wakeClose = (): void => stopReading.abort();
      call.signal.addEventListener('abort', wakeClose, { once: true });
      const session: AgentSession = {
        hostId: host.id,
        sessionId: nextSessionId++,
        connectedAt: ctx.clock(),
        send: (m: MessageInitShape<typeof ConnectResponseSchema>) => stream.send(m),
        close: (reason) => {
          log.info({ reason }, 'closing agent stream');
          closed = true;
          wakeClose();
        },
      };
      ctx.hub.attach(session);
      ctx.liveness.streamOpened(host.id);
      onSessionsChanged();
      log.info({ address: host.address, sessionId: session.sessionId, instances: hello.instances.length }, 'agent connected');
      const warnedOrphans = new Set<string>();
      // A cancelled call (the agent's connection closed) wakes the loop at once: the break is a
      // failure signal, and the request stream does not always end with it.
      const aborted = new Promise<undefined>((resolve) => call.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
      let stopWork: () => void = () => undefined;
      try {
        // The lease is renewed as of now; the agent counts it from when it sent Hello, earlier.
        ctx.liveness.renewLease(host.id, ctx.clock());
        // The repository (with its key and credentials) travels only on this authenticated stream.
        const backupRepository = ctx.backup ? toBackupRepository(ctx.backup) : undefined;
        await stream.send({
          message: {
            case: 'welcome',
            value: {
              heartbeatIntervalMs: ctx.heartbeatIntervalMs,
              leaseMs: ctx.leaseMs,
              serverTime: timestampFromMs(ctx.clock()),
              backupRepository,
              instanceTls: ctx.instanceTls.on,
              leaderEpoch: BigInt(ctx.leaderEpoch ?? 0),
            },
          },
        });
        // The full set (or the confirmation) first; the messages that wait queue behind it in the
        // order sent, heartbeats do not: they are taken as they are read.
        const work = new StreamWork(STREAM_WORK_LIMIT, () => wakeClose());
        stopWork = () => work.stop();
        work.add(async () => {
          // A set with no instance gets no report back: the host caught up once it is out.
          if ((await ctx.hub.sendFull(host.id, hello.appliedGeneration)) === 0) ctx.liveness.caughtUp(host.id, ctx.clock());
        });
        ctx.liveness.reading(host.id, ctx.clock());
        // The reports of the last message queued, while it waits: a newer report is merged into it
        // (services/report-merge.ts) instead of waiting whole behind it. Only the last: a report is
        // never applied before a message the agent sent ahead of it.
        let open: WaitingReports | undefined;
        while (!closed && work.error === undefined && !call.signal.aborted) {
          const next = await nextOrStop(iterator, stopReading.signal);
          if (next === undefined || next.done) break;
          const request = next.value;
          if (request.message.case === 'heartbeat') {
            await handleMessage(ctx, host.id, request, warnedOrphans, log, backups, initSql);
            continue;
          }
          let queued: boolean;
          if (request.message.case === 'report') {
            const reports = request.message.value.instances.map(fromInstanceStatus);
            if (open) {
              open.add(reports);
              continue;
            }
            const mine = new WaitingReports();
            mine.add(reports);
            open = mine;
            queued = work.add(async () => {
              if (open === mine) open = undefined;
              ctx.liveness.seen(host.id, ctx.clock());
              await onReports(ctx, host.id, mine.take(), warnedOrphans);
              // Handled in the order sent, so after the full set: the host caught up with the start's backlog.
              ctx.liveness.caughtUp(host.id, ctx.clock());
            });
          } else {
            open = undefined;
            queued = work.add(handling(ctx, host.id, request, warnedOrphans, log, backups, initSql));
          }
          if (!queued) {
            // Full: nothing more of this stream is read until a message is handled, which liveness must not count as the host's silence.
            ctx.liveness.handling(host.id, ctx.clock());
            await work.room();
            ctx.liveness.reading(host.id, ctx.clock());
          }
        }
        if (work.error !== undefined) throw work.error.err;
      } finally {
        // A goodbye half-closes the stream and then waits for us to end the call; a dead agent's
        // stream is cancelled under us (its connection closed), and the cancellation may land after
        // the request side already ended: a short wait tells the two apart.
        if (!closed && !call.signal.aborted) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([aborted, new Promise<void>((resolve) => (timer = setTimeout(resolve, GOODBYE_CHECK_MS)))]);
          clearTimeout(timer);
        }
        stopWork();
        const how = closed ? undefined : call.signal.aborted ? 'reset' : 'goodbye';
        ctx.liveness.streamEnded(host.id, how ?? 'goodbye', ctx.clock());
        if (how === 'reset') log.warn({ sessionId: session.sessionId }, 'agent stream broke (no goodbye): the host is suspect');
        ctx.hub.detach(session);
        // Unless a newer stream of the same host replaced this one, what it said no longer holds.
        if (!ctx.hub.isConnected(host.id)) ctx.spares.forget(host.id);
        onSessionsChanged();
        log.info({ sessionId: session.sessionId }, 'agent stream ended');
      }
    },
  };
}

/**
 * The work item that handles `request` later. Made here, not in the read loop: a closure made in the
 * loop shares the loop's scope, so every closure made there (the waiting reports' too) would hold
 * the request read last.
 */
function handling(
  ctx: CoordinatorContext,
  hostId: string,
  request: ConnectRequest,
  warnedOrphans: Set<string>,
  log: CoordinatorContext['log'],
  backups: BackupScheduler | undefined,
  initSql: InitSqlRunner | undefined,
): () => Promise<void> {
  return () => handleMessage(ctx, hostId, request, warnedOrphans, log, backups, initSql);
}

async function handleMessage(
  ctx: CoordinatorContext,
  hostId: string,
  request: ConnectRequest,
  warnedOrphans: Set<string>,
  log: CoordinatorContext['log'],
  backups: BackupScheduler | undefined,
  initSql: InitSqlRunner | undefined,
): Promise<void> {
  const m = request.message;
  switch (m.case) {
    case 'heartbeat': {
      const now = ctx.clock();
      ctx.liveness.seen(hostId, now);
      ctx.spares.set(hostId, m.value.readySpares);
      // Renewed before sending: if the send fails the agent's lease only ends sooner, never later.
      ctx.liveness.renewLease(hostId, now);
      const sentAt = m.value.sentAt;
      ctx.hub.send(hostId, { message: { case: 'leaseRenewal', value: sentAt ? { heartbeatSentAt: sentAt } : {} } }, 'lease renewal');
      return;
    }
    case 'report':
      ctx.liveness.seen(hostId, ctx.clock());
      await onReports(ctx, hostId, m.value.instances.map(fromInstanceStatus), warnedOrphans);
      return;
    case 'commandResult':
      log.info({ commandId: m.value.commandId, ok: m.value.ok, errorCode: m.value.errorCode, lsn: m.value.lsn }, 'command result');
      if (InitSqlRunner.owns(m.value.commandId)) {
        await initSql?.onResult(hostId, fromInitSqlResult(m.value));
        return;
      }
      if (BackupScheduler.owns(m.value.commandId)) {
        await backups?.onResult(hostId, fromBackupResult(m.value));
        return;
      }
      if (m.value.commandId.startsWith('expire:')) {
        if (!m.value.ok)
          await ctx.store.transaction((tx) =>
            tx.events.append({
              time: ctx.clock(),
              principal: `host:${hostId}`,
              action: 'backup.expire_failed',
              hostId,
              tenantId: m.value.commandId.split(':')[1] ?? '',
              outcome: 'FAILURE',
              message: `removing a backup from the repository failed: ${m.value.message}`,
            }),
          );
        return;
      }
      ctx.hub.commandResult(hostId, m.value.commandId, {
        ok: m.value.ok,
        errorCode: m.value.errorCode,
        message: m.value.message,
        lsn: m.value.lsn,
        timeline: m.value.timeline,
        at: ctx.clock(),
        upgradeSource: m.value.upgradeSource,
        upgradeTarget: m.value.upgradeTarget,
      });
      return;
    case 'hello':
      log.warn({}, 'second hello on one stream ignored');
      return;
    default:
      log.warn({}, 'empty agent message ignored');
  }
}
