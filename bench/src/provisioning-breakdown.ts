/**
 * Where the time of a provisioning run went, per tenant, from the agents' own logs:
 * CreateTenant -> the agent starts converging (placement, desired set), the agent's steps
 * (queued: waiting for a create slot; create: a spare or a template copy; start: postgres up;
 * objects: owner role and database; health: the first measure) and realized -> first query (report, route to the router, the
 * client's next attempt). The agents log one "instance created and realized" line per create
 * with its steps; their clocks are this machine's, so epoch times line up with ours.
 */
import fs from 'node:fs';
import path from 'node:path';
import { summarize, type Table } from './fleet-report.js';

/** When one tenant was asked for and first answered a query (epoch ms). */
export interface ProvisionTiming {
  tenantId: string;
  askedAt: number;
  queryAt: number;
}

interface Realized {
  at: number;
  durationMs: number;
  steps: Record<string, number>;
  from: string;
}

const STEPS = ['queued', 'create', 'start', 'objects', 'health'] as const;

/** Reads the agents' logs under `root` (agent-h*.log): each tenant's realization and where its data directory came from. */
function realizations(root: string): Map<string, Realized> {
  const out = new Map<string, Realized>();
  const from = new Map<string, string>();
  for (const file of fs.readdirSync(root).filter((f) => /^agent-.*\.log$/.test(f))) {
    for (const line of fs.readFileSync(path.join(root, file), 'utf8').split('\n')) {
      if (!line.includes('"tenantId"')) continue;
      let entry: { msg?: string; time?: string | number; tenantId?: string; durationMs?: number; steps?: Record<string, number>; from?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue; // a line cut short by a process still writing
      }
      const tenantId = entry.tenantId ?? '';
      if (entry.msg === 'instance created from template') from.set(tenantId, entry.from ?? '');
      if (entry.msg === 'instance created and realized' && entry.time !== undefined) {
        out.set(tenantId, { at: new Date(entry.time).getTime(), durationMs: entry.durationMs ?? 0, steps: entry.steps ?? {}, from: '' });
      }
    }
  }
  for (const [tenantId, r] of out) r.from = from.get(tenantId) ?? '';
  return out;
}

/** The breakdown table of `timings` (p50, p95, max per part), or undefined when no agent logged them. */
export function provisioningBreakdown(root: string, title: string, timings: readonly ProvisionTiming[]): { table: Table; data: unknown } | undefined {
  const logged = realizations(root);
  const parts = new Map<string, number[]>();
  const add = (name: string, v: number): void => {
    parts.set(name, [...(parts.get(name) ?? []), v]);
  };
  const sources = new Map<string, number>();
  for (const t of timings) {
    const r = logged.get(t.tenantId);
    if (!r) continue;
    add('CreateTenant -> agent converges (placement, desired set)', r.at - r.durationMs - t.askedAt);
    for (const s of STEPS) add(`agent: ${s}`, r.steps[s] ?? 0);
    add('realized -> first query (report, route, client retry)', t.queryAt - r.at);
    add('total', t.queryAt - t.askedAt);
    sources.set(r.from, (sources.get(r.from) ?? 0) + 1);
  }
  if (parts.size === 0) return undefined;
  const rows = [...parts].map(([name, values]) => {
    const s = summarize(values);
    return [name, Math.round(s.p50), Math.round(s.p95), Math.round(s.max)];
  });
  const from = [...sources].map(([k, n]) => `${n} ${k === 'spare' ? 'from a spare' : k === 'copied' ? 'waited for a copy' : k}`).join(', ');
  return {
    table: { title: `${title} (ms; ${from})`, columns: ['part', 'p50', 'p95', 'max'], rows },
    data: Object.fromEntries(parts),
  };
}
