/**
 * Where the time of each wake went, from the agents' own logs: the client connects -> the agent
 * starts its realization (router authentication and hold, WakeTenant, the coordinator's commit,
 * the desired-set push), the agent's steps (reconfigure: config and record checked; start:
 * postgres spawned until its postmaster.pid says ready; objects: roles and databases synced, or
 * objectsKept when a woken primary already holds them; health: the first measure) and realized ->
 * first answer (the report, the coordinator's commit, the route ROUTABLE at the router, the
 * router's backend connection and the query). Agents log one "instance started and realized" line
 * per start with its steps; their clocks are this machine's, so epoch times line up with ours.
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

interface Started {
  at: number;
  durationMs: number;
  steps: Record<string, number>;
}

const STEPS = ['reconfigure', 'start', 'objects', 'objectsKept', 'health'] as const;

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
export function wakeBreakdown(root: string, title: string, timings: readonly WakeTiming[]): { table: Table; data: Record<string, number[]> } | undefined {
  const logged = starts(root);
  const parts = new Map<string, number[]>();
  const add = (name: string, v: number): void => {
    parts.set(name, [...(parts.get(name) ?? []), v]);
  };
  for (const t of timings) {
    const s = startOf(logged, t);
    if (!s) continue;
    add('client connects -> agent starts (router hold, WakeTenant, commit, desired push)', s.at - s.durationMs - t.connectAt);
    for (const name of STEPS) if (s.steps[name] !== undefined) add(`agent: ${name}`, s.steps[name]);
    add('agent realized -> answer (report, commit, route ROUTABLE, router connects, query)', t.answeredAt - s.at);
    add('total', t.answeredAt - t.connectAt);
  }
  if (parts.size === 0) return undefined;
  const rows = [...parts].map(([name, values]) => {
    const s = summarize(values);
    return [`${name} (${values.length})`, Math.round(s.p50), Math.round(s.p99), Math.round(s.max)];
  });
  return { table: { title: `${title} (ms)`, columns: ['part', 'p50', 'p99', 'max'], rows }, data: Object.fromEntries(parts) };
}
