// What a process holds more in one heap snapshot than in another, grouped by kind and constructor
// (or function) name: e.g. a router with N idle clients against the same router once N/2 closed,
// divided by the clients that went, says what each client held (objects, closures, contexts,
// promises) and how much. Not a test: it prints a table.
//
//   PGS_BENCH_KEEP_HEAP_SNAPSHOTS=<dir> PGS_BENCH_COST_ONLY=memory npm run bench:router-cost -w bench
//   npm run bench:heap-diff -w bench -- <more.heapsnapshot> <less.heapsnapshot> [per, default 1] [entries, default 30]
import fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size per "type name" of a snapshot's nodes. */
function groups(file: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const selfAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += stride) {
    const type = types[s.nodes[i + typeAt]!] ?? '?';
    // Strings and numbers are grouped by kind only: their text would make a group each.
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : s.strings[s.nodes[i + nameAt]!]!;
    const key = `${type} ${name.slice(0, 80)}`;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[i + selfAt]!;
    out.set(key, g);
  }
  return out;
}

const [more, less, per = '1', entries = '30'] = process.argv.slice(2);
if (!more || !less) {
  console.error('usage: heap-diff <more.heapsnapshot> <less.heapsnapshot> [per] [entries]');
  process.exit(2);
}
const a = groups(more);
const b = groups(less);
const n = Number(per);
const rows: Array<{ group: string; count: number; bytes: number }> = [];
let total = 0;
for (const [key, g] of a) {
  const o = b.get(key) ?? { count: 0, bytes: 0 };
  total += g.bytes - o.bytes;
  if (g.bytes !== o.bytes || g.count !== o.count) rows.push({ group: key, count: g.count - o.count, bytes: g.bytes - o.bytes });
}
for (const [key, o] of b) {
  if (a.has(key)) continue;
  rows.push({ group: key, count: -o.count, bytes: -o.bytes });
  total -= o.bytes;
}
console.log(`${more} - ${less}: ${(total / n).toFixed(0)} bytes per ${n === 1 ? 'snapshot' : `one of ${n}`}`);
console.table(
  rows
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, Number(entries))
    .map((r) => ({ group: r.group, 'count per': (r.count / n).toFixed(2), 'bytes per': (r.bytes / n).toFixed(0) })),
);
