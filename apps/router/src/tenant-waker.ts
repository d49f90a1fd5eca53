// Asking the coordinator to wake suspended tenants for the clients this router holds: one request
// per tenant however many clients wait (asked again every few seconds while they still wait, in
// case a wake was lost), a throttled one retried when the coordinator says, and a refused one
// remembered so every waiting client hears the reason at once instead of at its deadline.
import type { Logger } from '@pgs/service-kit';
import type { RouterMetrics } from './metrics.js';

/** The coordinator's answer to a wake (the proto WakeOutcome names). */
export interface WakeAnswer {
  outcome: 'STARTED' | 'IN_PROGRESS' | 'THROTTLED' | 'REFUSED' | 'UNSPECIFIED';
  message: string;
  retryAfterMs: number;
}

/** Where wake requests go: the coordinator's RouteFeedService.WakeTenant, or a --workers primary. */
export type WakeRequester = (tenantId: string, waitingClients: number) => Promise<WakeAnswer>;

/** A waiting client's handle. */
export interface WakeTicket {
  /** The coordinator's refusal, once it refused (the client is told and released). */
  refused(): string | undefined;
  /** The client stopped waiting (served, gave up or left). */
  leave(): void;
}

interface TenantWake {
  waiting: number;
  asking: boolean;
  lastAskAt: number;
  refused: string | undefined;
  retry: NodeJS.Timeout | undefined;
}

/** Asks again this often while clients still wait. */
const REASK_MS = 3000;
/** After a failed request (coordinator unreachable), the next try. */
const ERROR_RETRY_MS = 500;

/** One router's wakes. */
export class TenantWaker {
  readonly #tenants = new Map<string, TenantWake>();

  constructor(
    private readonly request: WakeRequester,
    private readonly log: Logger,
    private readonly metrics?: RouterMetrics,
  ) {}

  /** Clients waiting now, per tenant. */
  waiting(tenantId: string): number {
    return this.#tenants.get(tenantId)?.waiting ?? 0;
  }

  /** A client of `tenantId` starts waiting for its wake. */
  join(tenantId: string): WakeTicket {
    let t = this.#tenants.get(tenantId);
    if (!t) this.#tenants.set(tenantId, (t = { waiting: 0, asking: false, lastAskAt: 0, refused: undefined, retry: undefined }));
    const state = t;
    state.waiting++;
    if (!state.asking && state.retry === undefined && Date.now() - state.lastAskAt >= REASK_MS) void this.#ask(tenantId, state);
    let left = false;
    return {
      refused: () => state.refused,
      leave: () => {
        if (left) return;
        left = true;
        state.waiting--;
        if (state.waiting > 0) return;
        clearTimeout(state.retry);
        this.#tenants.delete(tenantId);
      },
    };
  }

  async #ask(tenantId: string, state: TenantWake): Promise<void> {
    state.asking = true;
    state.lastAskAt = Date.now();
    let next = REASK_MS;
    try {
      const answer = await this.request(tenantId, state.waiting);
      this.metrics?.wakeRequests.inc({ outcome: answer.outcome.toLowerCase() });
      if (answer.outcome === 'REFUSED') {
        state.refused = answer.message || 'the coordinator refused to wake the tenant';
        this.log.warn({ tenantId, reason: state.refused }, 'wake refused');
        return;
      }
      if (answer.outcome === 'THROTTLED') next = Math.max(50, answer.retryAfterMs);
      else this.log.info({ tenantId, outcome: answer.outcome, waiting: state.waiting }, 'wake requested');
    } catch (err) {
      this.metrics?.wakeRequests.inc({ outcome: 'error' });
      this.log.warn({ tenantId, err }, 'wake request failed; asking again');
      next = ERROR_RETRY_MS;
    } finally {
      state.asking = false;
    }
    if (state.waiting <= 0 || this.#tenants.get(tenantId) !== state) return;
    state.retry = setTimeout(() => {
      state.retry = undefined;
      if (state.waiting > 0 && this.#tenants.get(tenantId) === state) void this.#ask(tenantId, state);
    }, next);
    state.retry.unref();
  }
}
