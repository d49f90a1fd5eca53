// The router's open clients per tenant, sent to the coordinator every few seconds: one small unary
// call with only the tenants that have clients. The coordinator suspends an idle-suspend tenant only
// when every router's last report shows none, so a router that cannot report keeps tenants awake.
import type { Logger } from '@pgs/service-kit';

/** Sends one report; the coordinator's RouteFeedService.ReportClients. */
export type ClientReportSender = (tenants: { tenantId: string; clients: number }[], complete: boolean) => Promise<void>;

/** What the reporter needs. */
export interface ClientReporterOptions {
  /** The open clients per tenant now (every process of the router counted). */
  counts(): ReadonlyMap<string, number>;
  send: ClientReportSender;
  intervalMs: number;
  log: Logger;
}

/** Reports client counts on a timer; errors are logged once per streak and retried on the next round. */
export class ClientReporter {
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #sending = false;

  constructor(private readonly o: ClientReporterOptions) {}

  start(): void {
    void this.report();
    this.#timer = setInterval(() => void this.report(), this.o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One report now (the timer's round). */
  async report(): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      const tenants = [...this.o.counts()].filter(([, n]) => n > 0).map(([tenantId, clients]) => ({ tenantId, clients }));
      await this.o.send(tenants, true);
      if (this.#failing) this.o.log.info({}, 'client reports reach the coordinator again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.o.log.warn({ err }, "client report failed; the coordinator suspends nothing on this router's word until it gets one");
      this.#failing = true;
    } finally {
      this.#sending = false;
    }
  }
}
