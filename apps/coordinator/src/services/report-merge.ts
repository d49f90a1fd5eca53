/**
 * Reports of one agent stream that wait to be applied, merged as they come. An agent reports every
 * instance every few seconds; a coordinator behind its work (a first start, a burst of creates, a
 * starved process) used to keep each waiting report whole, up to a stream's limit of waiting
 * messages: with hundreds of instances a host that is 16 full reports of every host, all of them
 * applied in turn although each repeats the one before. A waiting report of an instance that is
 * steady (realized, not deleted, no recovery result: what reportFacts compares) is replaced by the
 * same instance's newer report, which says everything the older one did; any other report (a
 * failure counted against the retry backoff, a deletion, a recovery result) is kept, and the newer
 * one is applied after it, in order.
 */
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import { reportFacts } from './unchanged-reports.js';

/** Reports waiting for one stream, merged; `take()` hands them over in order (one list per apply). */
export class WaitingReports {
  private readonly byTenant = new Map<string, InstanceReportView[]>();

  get size(): number {
    return this.byTenant.size;
  }

  /** Adds a newer report's instances over what waits. */
  add(reports: readonly InstanceReportView[]): void {
    for (const r of reports) {
      const waiting = this.byTenant.get(r.tenantId);
      if (!waiting) this.byTenant.set(r.tenantId, [r]);
      else if (reportFacts(waiting[waiting.length - 1]!) !== undefined) waiting[waiting.length - 1] = r;
      else waiting.push(r);
    }
  }

  /** Everything that waits, oldest instance first, each instance's reports in the order they came; then empty. */
  take(): InstanceReportView[] {
    const out = [...this.byTenant.values()].flat();
    this.byTenant.clear();
    return out;
  }
}
