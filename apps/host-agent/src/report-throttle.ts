/**
 * Which instances the periodic report carries. Every instance every report interval cost the
 * coordinator some 10 µs each (decode, compare, health cache), and a fleet of quiet tenants repeats
 * itself: at 1,000,000 instances every 5 s, two cores of a coordinator for nothing new. So an
 * instance goes into the periodic report when its report differs from the one last sent (the
 * look's own clock aside), when it is replicated (a failover waits for its members' positions
 * reported after the primary was fenced, and a quiet replica's position does not move), and
 * otherwise at least every `fullIntervalMs`, so its health stays fresh for what reads its age (the
 * idle watcher wants it under 30 s). A change of state is sent at once anyway, outside this.
 * Pure: the caller passes the statuses and the clock.
 */
import type { InstanceStatus } from './model.js';

/** A report as compared between rounds: all of it but the times a look takes by itself. */
export function reportFacts(s: InstanceStatus): string {
  if (!s.health) return JSON.stringify(s);
  const { checkedAt: _checked, archive, ...health } = s.health;
  const kept = archive ? { ...health, archive: { ...archive, archivedThroughMs: 0 } } : health;
  return JSON.stringify({ ...s, health: kept });
}

/** What was last sent of each instance, per stream. */
export class ReportThrottle {
  private readonly sent = new Map<string, { facts: string; at: number }>();

  constructor(private readonly fullIntervalMs: number) {}

  /** A new stream: the next round sends every instance. */
  reset(): void {
    this.sent.clear();
  }

  /** The statuses the round at `now` sends, noting them as sent. */
  due(statuses: readonly InstanceStatus[], now: number, replicated: (tenantId: string) => boolean): InstanceStatus[] {
    const out: InstanceStatus[] = [];
    const present = new Set<string>();
    for (const s of statuses) {
      present.add(s.tenantId);
      const facts = reportFacts(s);
      const last = this.sent.get(s.tenantId);
      if (last && last.facts === facts && now - last.at < this.fullIntervalMs && !replicated(s.tenantId)) continue;
      this.sent.set(s.tenantId, { facts, at: now });
      out.push(s);
    }
    for (const id of this.sent.keys()) if (!present.has(id)) this.sent.delete(id);
    return out;
  }
}
