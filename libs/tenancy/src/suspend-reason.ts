/**
 * The status reason of a suspended tenant, written once when it is suspended and kept (a refused
 * wake appends its reason): "suspended at <ISO time> (why)". The moment it names is the tenant's
 * "suspended since", which the APIs show as a field of their own; this file is the one place that
 * writes and reads that format.
 */

/** The reason a tenant suspended at `at` (epoch ms) gets. */
export function suspendedReason(at: number, why: string): string {
  return `suspended at ${new Date(at).toISOString()} (${why})`;
}

/** When a SUSPENDED tenant was suspended (epoch ms), from its reason; undefined for any other status or reason. */
export function suspendedSince(status: string, reason: string): number | undefined {
  if (status !== 'SUSPENDED') return undefined;
  const m = /^suspended at (\d{4}-\d\d-\d\dT[0-9:.]+Z)/.exec(reason);
  if (!m?.[1]) return undefined;
  const at = Date.parse(m[1]);
  return Number.isNaN(at) ? undefined : at;
}
