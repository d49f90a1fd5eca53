/**
 * Whether an instance report may change the health verdict its tenant's stored status and route
 * were derived with. A report that sets no stored fact can still flip that verdict (a primary that
 * stopped accepting connections makes the tenant ERROR and its route refuse clients), so such a
 * report must be applied and the tenant derived again; one that repeats the verdict need not be,
 * which is what keeps a fleet's reports cheap.
 *
 * The verdict the stored status was derived with is the one of the last health seen for the
 * instance, which the coordinator keeps in memory only. After a coordinator start none is there,
 * while the stored status was derived by the process before with whatever it had seen. The stored
 * status still tells it in one case: a tenant is ACTIVE with no reason only when its primary and
 * every replica were healthy. In any other status the verdict is unknown and the report is applied.
 */
import type { TenantStatus } from './statuses.js';

/** What the decision looks at. */
export interface ReportHealthInput {
  /** The verdict of the last health seen for the instance since start; undefined = none seen. */
  seen: boolean | undefined;
  /** The verdict the report gives. */
  reported: boolean;
  /** The tenant's stored status and its reason. */
  status: TenantStatus;
  statusReason: string;
}

/** The verdict the stored status was derived with, when it can be told. */
export function verdictDerivedWith(i: Omit<ReportHealthInput, 'reported'>): boolean | undefined {
  if (i.seen !== undefined) return i.seen;
  return i.status === 'ACTIVE' && i.statusReason === '' ? true : undefined;
}

/** True when the report flips the verdict the stored status was derived with, or that verdict is unknown. */
export function reportMayFlipHealth(i: ReportHealthInput): boolean {
  const before = verdictDerivedWith(i);
  return before === undefined || before !== i.reported;
}
