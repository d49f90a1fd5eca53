/**
 * Where the time of each wake went, from the agents' own logs: the client connects -> the agent
 * starts its realization (router authentication and hold, WakeTenant, the coordinator's commit,
 * the desired-set push), the agent's steps (reconfigure: config and record checked; start:
 * postgres spawned until its postmaster.pid says ready; objects: roles and databases synced, or
 * objectsKept when a woken primary already holds them; health: the first measure) and realized ->
 * first answer (the report, the coordinator's commit, the route ROUTABLE at the router, the
 * router's backend connection and the query). Agents log one "instance started and realized" line
 * per start with its steps; their clocks are this machine's, so epoch times line up with ours.
 * With the coordinator's events of each wake (wakeEvents: `tenant.wake`, timed when the request
 * arrived, and `tenant.woken`, when the route turned ROUTABLE), the two outer parts split in two
 * each: the router's part before the coordinator has the request, and the coordinator's until the
 * agent starts; the report and commit until the route is ROUTABLE, and the route reaching the router,
 * its backend connection and the query.
 */
import fs from 'node:fs';
import path from 'node:path';
import { summarize, type Table } from './fleet-report.js';

/** One wake seen by the client (epoch ms). */
export interface WakeTiming {
  tenantId: string;
  connectAt: number;
  answeredAt: number;
}

/** The coordinator's events of wakes, per tenant: action and epoch ms. */
export type WakeEvents = Map<string, { action: string; at: number }[]>;

/** What reading the events needs of the operator client. */
interface EventLister {
  listEvents(request: { tenantId: string; limit: number }): Promise<{
    events: { action: string; time?: { seconds: bigint; nanos: number } | undefined }[];
  }>;
}

/** The `tenant.wake` and `tenant.woken` events of `tenantIds`. */
export async function wakeEvents(client: EventLister, tenantIds: Iterable<string>): Promise<WakeEvents> {
  const out: WakeEvents = new Map();
  for (const id of new Set(tenantIds)) {
    const { events } = await client.listEvents({ tenantId: id, limit: 1000 });
    out.set(
      id,
      events
        .filter((e) => (e.action === 'tenant.wake' || e.action === 'tenant.woken') && e.time)
        .map((e) => ({ action: e.action, at: Number(e.time?.seconds ?? 0n) * 1000 + Math.floor((e.time?.nanos ?? 0) / 1e6) })),
    );
  }
  return out;
}

interface Started {
  at: number;
  durationMs: number;
  steps: Record<string, number>;
}

const STEPS = ['reconfigure', 'start', 'objects', 'objectsKept', 'health', 'healthDeferred'] as const;

/** Every "instance started and realized" line of the agents' logs under `root`, per tenant, oldest first. */
function starts(root: string): Map<string, Started[]> {
  const out = new Map<string, Started[]>();
  for (const file of fs.readdirSync(root).filter((f) => /^agent-.*\.log$/.test(f))) {
    for (const line of fs.readFileSync(path.join(root, file), 'utf8').split('\n')) {
      if (!line.includes('instance started and realized')) continue;
      let entry: { msg?: string; time?: string | number; tenantId?: string; durationMs?: number; steps?: Record<string, number> };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue; // a line cut short by a process still writing
      }
      if (entry.msg !== 'instance started and realized' || entry.time === undefined || !entry.tenantId) continue;
      const list = out.get(entry.tenantId) ?? [];
      list.push({ at: new Date(entry.time).getTime(), durationMs: entry.durationMs ?? 0, steps: entry.steps ?? {} });
      out.set(entry.tenantId, list);
    }
  }
  return out;
}

/** The start of `tenantId` that finished within the wake (the agent finished before the client got its answer). */
function startOf(logged: Map<string, Started[]>, t: WakeTiming): Started | undefined {
  return logged.get(t.tenantId)?.find((s) => s.at >= t.connectAt && s.at <= t.answeredAt);
}

/** The breakdown table of `timings` (p50, p99, max per part), or undefined when no agent logged them. */
export function wakeBreakdown(
  root: string,
  title: string,
  timings: readonly WakeTiming[],
  events?: WakeEvents,
): { table: Table; data: Record<string, number[]> } | undefined {
  const logged = starts(root);
  const parts = new Map<string, number[]>();
  const add = (name: string, v: number): void => {
    parts.set(name, [...(parts.get(name) ?? []), v]);
  };
  for (const t of timings) {
    const s = startOf(logged, t);
    if (!s) continue;
    const agentStart = s.at - s.durationMs;
    // The wake's events, within the client's wait (event times are whole ms: one ms of slack).
    const during = (action: string): number | undefined =>
      events?.get(t.tenantId)?.find((e) => e.action === action && e.at >= t.connectAt - 1 && e.at <= t.answeredAt + 1)?.at;
    const wakeAt = during('tenant.wake');
    const wokenAt = during('tenant.woken');
    if (wakeAt !== undefined) {
      add('client connects -> coordinator has the wake (router: startup, auth, hold, WakeTenant)', wakeAt - t.connectAt);
      add('coordinator has the wake -> agent starts (decide, commit, desired push)', agentStart - wakeAt);
    } else add('client connects -> agent starts (router hold, WakeTenant, commit, desired push)', agentStart - t.connectAt);
    for (const name of STEPS) if (s.steps[name] !== undefined) add(`agent: ${name}`, s.steps[name]);
    if (wokenAt !== undefined) {
      add('agent realized -> route ROUTABLE (report, commit)', wokenAt - s.at);
      add('route ROUTABLE -> answer (route push, router hold ends, backend connect, query)', t.answeredAt - wokenAt);
    } else add('agent realized -> answer (report, commit, route ROUTABLE, router connects, query)', t.answeredAt - s.at);
    add('total', t.answeredAt - t.connectAt);
  }
  if (parts.size === 0) return undefined;
  const rows = [...parts].map(([name, values]) => {
    const s = summarize(values);
    return [`${name} (${values.length})`, Math.round(s.p50), Math.round(s.p99), Math.round(s.max)];
  });
  return { table: { title: `${title} (ms)`, columns: ['part', 'p50', 'p99', 'max'], rows }, data: Object.fromEntries(parts) };
}
