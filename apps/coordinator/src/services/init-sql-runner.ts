/**
 * Runs tenants' init scripts (decided by libs/tenancy init-sql): the coordinator keeps the scripts
 * and how far they ran with the tenant, and sends RunInitSql to the agent of the primary once it
 * runs with the tenant's users and databases; the agent runs them inside the instance (it is the
 * only one that can reach it as an administrator) and answers how far they got.
 *
 * Restarts: a run is RUNNING in the store from the moment it is sent. A coordinator that restarts
 * sends RUNNING runs again; an agent that reconnects (its stream is a new session) is sent them
 * again; an answer that never comes is asked for again after a while. Sending again is safe: the
 * agent skips every script whose commit the database recorded, so nothing runs twice.
 */
import { finishInitSql, initSqlSendDue, releaseInitSql, releaseRefusal, startInitSql, type InitSqlOutcome, type InitSqlRecord } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound, PreconditionError } from '../domain/errors.js';
import { toRunInitSqlCommand, type InitSqlResultView } from '../transport/mappers/agent-mapper.js';
import type { Commit, StoreReads } from '../store/contract.js';

const PRINCIPAL = 'system:init-sql';
const COMMAND_PREFIX = 'initsql:';
/** Events after which a tenant with scripts to run is looked at at once. */
const LOOK_AT_ONCE = new Set(['tenant.create', 'tenant.init_sql.released', 'tenant.status', 'failover.completed', 'switchover.completed']);

/** The command id of a run: the tenant and the attempt, so an answer after a restart finds its run. */
export function initSqlCommandId(tenantId: string, attempt: number): string {
  return `${COMMAND_PREFIX}${tenantId}:${attempt}`;
}

function parseCommandId(id: string): { tenantId: string; attempt: number } | undefined {
  if (!id.startsWith(COMMAND_PREFIX)) return undefined;
  const rest = id.slice(COMMAND_PREFIX.length);
  const at = rest.lastIndexOf(':');
  const attempt = Number(rest.slice(at + 1));
  return at > 0 && Number.isInteger(attempt) ? { tenantId: rest.slice(0, at), attempt } : undefined;
}

/** Sends init scripts and records their outcome. */
export class InitSqlRunner {
  /** Per tenant, the send of the current run by this process: when, and on which agent session. */
  private readonly sent = new Map<string, { at: number; session: number | undefined }>();
  private readonly soon = new Set<string>();
  /** Tenants whose look is in flight (its reads and write are awaited): one look per tenant at a time. */
  private readonly looking = new Set<string>();
  private checking = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly options: { resendAfterMs: number; intervalMs: number } = { resendAfterMs: 30_000, intervalMs: 1000 },
  ) {}

  /** Follows commits (a tenant that turned ACTIVE runs at once) and looks at open runs every interval. */
  start(): void {
    this.unsubscribe = this.ctx.store.subscribe((commit) => this.onCommit(commit));
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private onCommit(summary: Commit): void {
    for (const e of summary.events) if (e.tenantId !== '' && LOOK_AT_ONCE.has(e.action)) this.soon.add(e.tenantId);
    if (this.soon.size === 0 || this.scheduled) return;
    this.scheduled = true;
    // After the commit's other listeners (the agents' desired sets go first).
    setImmediate(() => {
      this.scheduled = false;
      const ids = [...this.soon];
      this.soon.clear();
      for (const id of ids) void this.maybeSend(id);
    });
  }

  /** Every open run (PENDING or RUNNING): started or sent again when due. */
  async check(): Promise<void> {
    // An interval that comes while the last check still runs is skipped.
    if (this.checking) return;
    this.checking = true;
    try {
      for (const r of await this.ctx.store.read.initSql.listOpen()) await this.maybeSend(r.tenantId);
    } catch (err) {
      this.ctx.log.error({ err }, 'checking init scripts failed; trying again next interval');
    } finally {
      this.checking = false;
    }
  }

  private async primaryOf(tx: StoreReads, tenantId: string): Promise<{ hostId: string; facts: Parameters<typeof initSqlSendDue>[1] } | undefined> {
    const p = (await tx.placements.list({ tenantId })).find((x) => x.role === 'PRIMARY');
    if (!p) return undefined;
    const hostReady = (await tx.hosts.get(p.hostId))?.state === 'READY';
    return {
      hostId: p.hostId,
      facts: {
        realized: p.realization === 'REALIZED',
        running: p.instanceState === 'RUNNING' && hostReady,
        connected: this.ctx.hub.isConnected(p.hostId),
        realizedRevision: p.realizedRevision,
      },
    };
  }

  private lastSentAt(tenantId: string, hostId: string): number | undefined {
    const s = this.sent.get(tenantId);
    // A new stream of the agent (it restarted, or reconnected): the command may be lost.
    return s && s.session === this.ctx.hub.sessionOf(hostId) ? s.at : undefined;
  }

  private async maybeSend(tenantId: string): Promise<void> {
    // A look already in flight decides for this one too (two would both send).
    if (this.looking.has(tenantId)) return;
    this.looking.add(tenantId);
    try {
      await this.look(tenantId);
    } finally {
      this.looking.delete(tenantId);
    }
  }

  private async look(tenantId: string): Promise<void> {
    const now = this.ctx.clock();
    const due = async (tx: StoreReads): Promise<{ record: InitSqlRecord; hostId: string } | undefined> => {
      const record = await tx.initSql.get(tenantId);
      const tenant = await tx.tenants.get(tenantId);
      if (!record || !tenant || tenant.deleting) return undefined;
      const primary = await this.primaryOf(tx, tenantId);
      if (!primary || !initSqlSendDue(record, primary.facts, this.lastSentAt(tenantId, primary.hostId), now, this.options.resendAfterMs)) return undefined;
      return { record, hostId: primary.hostId };
    };
    try {
      // Decided from plain reads first (most looks send nothing), then again inside the write.
      if (!(await due(this.ctx.store.read))) return;
      const started = await this.ctx.store.transaction(async (tx) => {
        const d = await due(tx);
        if (!d) return undefined;
        const next = startInitSql(d.record, now);
        if (next !== d.record) {
          await tx.initSql.put(next);
          await tx.events.append({
            time: now,
            principal: PRINCIPAL,
            action: 'tenant.init_sql.started',
            tenantId,
            hostId: d.hostId,
            message: `init scripts started on ${d.hostId} (${next.scripts.length - next.applied} to run, attempt ${next.attempt})`,
            details: { attempt: String(next.attempt) },
          });
        }
        return { record: next, hostId: d.hostId };
      });
      if (!started) return;
      const { record, hostId } = started;
      if (this.ctx.hub.send(hostId, toRunInitSqlCommand(initSqlCommandId(tenantId, record.attempt), tenantId, record), 'run init sql')) {
        this.sent.set(tenantId, { at: now, session: this.ctx.hub.sessionOf(hostId) });
        this.ctx.log.info({ tenantId, hostId, attempt: record.attempt }, 'init scripts sent to the agent');
      }
    } catch (err) {
      this.ctx.log.error({ err, tenantId }, 'cannot start init scripts; trying again next interval');
    }
  }

  /** True when `commandId` is a RunInitSql's (its answer goes to `onResult`). */
  static owns(commandId: string): boolean {
    return parseCommandId(commandId) !== undefined;
  }

  /** Records an agent's answer: SUCCEEDED, or FAILED with the script and PostgreSQL's error. */
  async onResult(hostId: string, result: InitSqlResultView): Promise<void> {
    const ids = parseCommandId(result.commandId);
    if (!ids) return;
    const now = this.ctx.clock();
    // An agent that could not run them at all (not a running primary any more) is asked again later.
    const notRun = !result.ok && result.errorCode !== 'INIT_SQL_FAILED';
    if (notRun) {
      this.ctx.log.warn({ tenantId: ids.tenantId, hostId, errorCode: result.errorCode, message: result.message }, 'init scripts not run; sending again later');
      this.sent.delete(ids.tenantId);
      return;
    }
    const outcome: InitSqlOutcome = {
      attempt: ids.attempt,
      applied: result.applied,
      failedScript: result.failedScript,
      error: result.error || (result.ok ? '' : result.message),
    };
    await this.ctx.store.transaction(async (tx) => {
      const record = await tx.initSql.get(ids.tenantId);
      const next = record ? finishInitSql(record, outcome, now) : undefined;
      if (!next) return;
      await tx.initSql.put(next);
      if (next.state === 'SUCCEEDED') {
        await tx.events.append({
          time: now,
          principal: `host:${hostId}`,
          action: 'tenant.init_sql.succeeded',
          tenantId: ids.tenantId,
          hostId,
          message: `init scripts committed: ${next.scripts.map((s) => s.name).join(', ')}`,
          details: { attempt: String(next.attempt), applied: String(next.applied) },
        });
      } else {
        await tx.events.append({
          time: now,
          principal: `host:${hostId}`,
          action: 'tenant.init_sql.failed',
          tenantId: ids.tenantId,
          hostId,
          outcome: 'FAILURE',
          message: `init script ${next.failedScript} failed: ${next.error}. The ${next.applied} script(s) before it are committed and the tenant serves; fix the cause inside the tenant, then: pgsctl tenant init-sql retry ${ids.tenantId}`,
          details: { attempt: String(next.attempt), applied: String(next.applied), script: next.failedScript },
        });
      }
    });
    this.sent.delete(ids.tenantId);
  }

  /** Releases HELD scripts or retries FAILED ones (RunInitSql). */
  async release(tenantId: string, principal: string): Promise<void> {
    const now = this.ctx.clock();
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(tenantId);
      if (!tenant) throw notFound.tenant(tenantId);
      const record = await tx.initSql.get(tenantId);
      if (!record) throw new PreconditionError('NO_INIT_SQL', `tenant "${tenantId}" was created without init scripts; they are given only at creation`);
      const refusal = releaseRefusal(record);
      if (refusal !== undefined) throw new PreconditionError('INIT_SQL_DONE', `tenant "${tenantId}": ${refusal}`);
      const next = releaseInitSql(record, tenant.instanceRevision, now);
      if (next === record) return;
      await tx.initSql.put(next);
      await tx.events.append({
        time: now,
        principal,
        action: 'tenant.init_sql.released',
        tenantId,
        message: record.state === 'FAILED' ? `init scripts retried from ${record.failedScript}` : 'init scripts released',
      });
    });
  }
}
