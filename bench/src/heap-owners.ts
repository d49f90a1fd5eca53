// Who holds a process's heap: the dominator tree of a .heapsnapshot (an object "owns" everything
// that is reachable only through it), printed as the owners that retain the most, each with the
// path of properties that leads to it. heap-diff says which kinds of objects grew; this says which
// map, cache or queue keeps them. With two snapshots (e.g. a coordinator with 5,000 and with
// 20,000 tenants), the owners are matched by their path and the difference is divided by `per`
// (the tenants between the two): bytes per tenant by owner.
//
//   npm run bench:heap-owners -w bench -- <a.heapsnapshot> [<b.heapsnapshot> <per>] [--min-mib 1] [--depth 14] [--min-per 100] [--retainers 3]
//
// The file is read as a stream into typed arrays (a snapshot of a large heap is more than one
// string may hold); the dominators are Lengauer-Tarjan over every edge but the weak ones.
import fs from 'node:fs';
import { parseArgs } from 'node:util';

interface Graph {
  /** Per node: its type index, name string index, self size, first edge index. */
  type: Uint8Array;
  name: Uint32Array;
  self: Float64Array;
  firstEdge: Uint32Array;
  /** Per edge: type index, name (string index or element index), target node. */
  edgeType: Uint8Array;
  edgeName: Uint32Array;
  edgeTo: Uint32Array;
  strings: string[];
  nodeTypes: string[];
  edgeTypes: string[];
}

/** Reads a section of integers ("nodes" or "edges") from `text` at `at` into `out`, field by field. */
class IntReader {
  private value = -1;
  private index = 0;
  constructor(
    private readonly put: (index: number, value: number) => void,
    readonly total: number,
  ) {}
  /** Feeds text; returns the offset just past the closing bracket, or -1 when more is needed. */
  feed(text: string, from: number): number {
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) {
        this.value = (this.value < 0 ? 0 : this.value * 10) + (c - 0x30);
        continue;
      }
      if (this.value >= 0) {
        this.put(this.index++, this.value);
        this.value = -1;
      }
      if (c === 0x5d /* ] */) {
        if (this.index !== this.total) throw new Error(`read ${this.index} integers, expected ${this.total}`);
        return i + 1;
      }
    }
    return -1;
  }
}

async function readGraph(file: string): Promise<Graph> {
  let head = '';
  let phase: 'head' | 'nodes' | 'between' | 'edges' | 'tail' = 'head';
  let g: Graph | undefined;
  let nodeFields: string[] = [];
  let edgeFields: string[] = [];
  let nodes: IntReader | undefined;
  let edges: IntReader | undefined;
  let tail: string[] = [];
  let pending = '';
  for await (const chunk of fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 22 })) {
    let text = pending + (chunk as string);
    pending = '';
    let at = 0;
    if (phase === 'head') {
      head += text;
      const start = head.indexOf('"nodes":[');
      if (start < 0) continue;
      const meta = JSON.parse(head.slice(head.indexOf('{', head.indexOf('"snapshot"')), head.lastIndexOf('}', start) + 1)) as {
        meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
        node_count: number;
        edge_count: number;
      };
      nodeFields = meta.meta.node_fields;
      edgeFields = meta.meta.edge_fields;
      const n = meta.node_count;
      const e = meta.edge_count;
      const gg: Graph = {
        type: new Uint8Array(n),
        name: new Uint32Array(n),
        self: new Float64Array(n),
        firstEdge: new Uint32Array(n + 1),
        edgeType: new Uint8Array(e),
        edgeName: new Uint32Array(e),
        edgeTo: new Uint32Array(e),
        strings: [],
        nodeTypes: meta.meta.node_types[0],
        edgeTypes: meta.meta.edge_types[0],
      };
      g = gg;
      const ns = nodeFields.length;
      const [ti, ni, si, ei] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nodeFields.indexOf(f)) as [number, number, number, number];
      const edgeCount = new Uint32Array(n);
      nodes = new IntReader((i, v) => {
        const node = (i / ns) | 0;
        const f = i % ns;
        if (f === ti) gg.type[node] = v;
        else if (f === ni) gg.name[node] = v;
        else if (f === si) gg.self[node] = v;
        else if (f === ei) edgeCount[node] = v;
        if (node === n - 1 && f === ns - 1) for (let k = 0; k < n; k++) gg.firstEdge[k + 1] = gg.firstEdge[k]! + edgeCount[k]!;
      }, n * ns);
      const es = edgeFields.length;
      const [eti, eni, eto] = ['type', 'name_or_index', 'to_node'].map((f) => edgeFields.indexOf(f)) as [number, number, number];
      edges = new IntReader((i, v) => {
        const edge = (i / es) | 0;
        const f = i % es;
        if (f === eti) gg.edgeType[edge] = v;
        else if (f === eni) gg.edgeName[edge] = v;
        else if (f === eto) gg.edgeTo[edge] = v / ns;
      }, e * es);
      text = head;
      at = start + '"nodes":['.length;
      head = '';
      phase = 'nodes';
    }
    if (phase === 'nodes') {
      const end = nodes!.feed(text, at);
      if (end < 0) continue;
      at = end;
      phase = 'between';
    }
    if (phase === 'between') {
      const start = text.indexOf('"edges":[', at);
      if (start < 0) {
        pending = text.slice(Math.max(at, text.length - 16));
        continue;
      }
      at = start + '"edges":['.length;
      phase = 'edges';
    }
    if (phase === 'edges') {
      const end = edges!.feed(text, at);
      if (end < 0) continue;
      at = end;
      phase = 'tail';
    }
    if (phase === 'tail') tail.push(at === 0 ? text : text.slice(at));
  }
  if (!g || phase !== 'tail') throw new Error(`${file}: not a whole heap snapshot`);
  const rest = tail.join('');
  tail = [];
  const s = rest.indexOf('"strings":[');
  if (s < 0) throw new Error(`${file}: no strings`);
  const e = rest.lastIndexOf(']');
  g.strings = JSON.parse(rest.slice(s + '"strings":'.length, e + 1)) as string[];
  return g;
}

/** Immediate dominators from node 0 (Lengauer-Tarjan, simple version, iterative), weak edges ignored. */
function dominators(g: Graph): { idom: Int32Array; order: Uint32Array; reached: number; predStart: Uint32Array; preds: Uint32Array } {
  const n = g.type.length;
  const weak = g.edgeTypes.indexOf('weak');
  const semi = new Int32Array(n).fill(-1);
  const vertex = new Uint32Array(n);
  const parent = new Int32Array(n).fill(-1);
  // Depth-first numbering from the root, without recursion.
  const stack = new Uint32Array(n);
  const next = new Uint32Array(n);
  let count = 0;
  let top = 0;
  stack[top++] = 0;
  semi[0] = count;
  vertex[count++] = 0;
  next[0] = g.firstEdge[0]!;
  while (top > 0) {
    const v = stack[top - 1]!;
    const e = next[v]!;
    if (e >= g.firstEdge[v + 1]!) {
      top--;
      continue;
    }
    next[v] = e + 1;
    if (g.edgeType[e] === weak) continue;
    const w = g.edgeTo[e]!;
    if (semi[w] !== -1) continue;
    parent[w] = v;
    semi[w] = count;
    vertex[count++] = w;
    next[w] = g.firstEdge[w]!;
    stack[top++] = w;
  }
  // Predecessors of reached nodes (reverse edges), as CSR.
  const predCount = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (semi[v] === -1) continue;
    for (let e = g.firstEdge[v]!; e < g.firstEdge[v + 1]!; e++) if (g.edgeType[e] !== weak) predCount[g.edgeTo[e]! + 1]!++;
  }
  for (let v = 0; v < n; v++) predCount[v + 1]! += predCount[v]!;
  const preds = new Uint32Array(predCount[n]!);
  const fill = predCount.slice(0, n);
  for (let v = 0; v < n; v++) {
    if (semi[v] === -1) continue;
    for (let e = g.firstEdge[v]!; e < g.firstEdge[v + 1]!; e++) if (g.edgeType[e] !== weak) preds[fill[g.edgeTo[e]!]!++] = v;
  }
  const ancestor = new Int32Array(n).fill(-1);
  const label = new Uint32Array(n);
  for (let v = 0; v < n; v++) label[v] = v;
  const idom = new Int32Array(n).fill(-1);
  const bucketHead = new Int32Array(n).fill(-1);
  const bucketNext = new Int32Array(n).fill(-1);
  const path = new Uint32Array(n);
  // eval with path compression, iterative.
  const evaluate = (v: number): number => {
    if (ancestor[v] === -1) return v;
    let len = 0;
    let u = v;
    while (ancestor[ancestor[u]!] !== -1) {
      path[len++] = u;
      u = ancestor[u]!;
    }
    for (let i = len - 1; i >= 0; i--) {
      const x = path[i]!;
      const a = ancestor[x]!;
      if (semi[label[a]!]! < semi[label[x]!]!) label[x] = label[a]!;
      ancestor[x] = ancestor[a]!;
    }
    return label[v]!;
  };
  for (let i = count - 1; i > 0; i--) {
    const w = vertex[i]!;
    for (let p = predCount[w]!; p < predCount[w + 1]!; p++) {
      const v = preds[p]!;
      const u = evaluate(v);
      if (semi[u]! < semi[w]!) semi[w] = semi[u]!;
    }
    const s = vertex[semi[w]!]!;
    bucketNext[w] = bucketHead[s]!;
    bucketHead[s] = w;
    const pw = parent[w]!;
    ancestor[w] = pw;
    for (let v = bucketHead[pw]!; v !== -1; v = bucketNext[v]!) {
      const u = evaluate(v);
      idom[v] = semi[u]! < semi[v]! ? u : pw;
    }
    bucketHead[pw] = -1;
  }
  for (let i = 1; i < count; i++) {
    const w = vertex[i]!;
    if (idom[w] !== vertex[semi[w]!]) idom[w] = idom[idom[w]!]!;
  }
  idom[0] = 0;
  return { idom, order: vertex.subarray(0, count), reached: count, predStart: predCount, preds };
}

interface Owner {
  path: string;
  depth: number;
  retained: number;
  count: number;
  /** The biggest node with this path (to ask who retains it). */
  sample: number;
  sampleRetained: number;
}

/**
 * Every owner on the walk down the dominator tree from the root, through owners retaining at least
 * `min` bytes and at most `depth` levels, keyed by its path of labels (siblings with one path add
 * up: the entries of one map are one row).
 */
function owners(g: Graph, min: number, depth: number): { total: number; byPath: Map<string, Owner>; retainers: (v: number, levels: number) => string[] } {
  const n = g.type.length;
  const { idom, order, predStart, preds } = dominators(g);
  const retained = new Float64Array(n);
  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i]!;
    retained[v]! += g.self[v]!;
    if (v !== 0) retained[idom[v]!]! += retained[v]!;
  }
  // Children in the dominator tree, as CSR.
  const childCount = new Uint32Array(n + 1);
  for (const v of order) if (v !== 0) childCount[idom[v]! + 1]!++;
  for (let v = 0; v < n; v++) childCount[v + 1]! += childCount[v]!;
  const children = new Uint32Array(childCount[n]!);
  const fill = childCount.slice(0, n);
  for (const v of order) if (v !== 0) children[fill[idom[v]!]!++] = v;
  const nodeLabel = (v: number): string => {
    const type = g.nodeTypes[g.type[v]!] ?? '?';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') return `(${type})`;
    const name = (g.strings[g.name[v]!] ?? '').slice(0, 60).replace(/\s+/g, ' ');
    return type === 'object' ? name : `(${type}) ${name}`;
  };
  /** The name of an edge from `from` to `to`, when there is one (indexes and map keys generalised). */
  const edgeLabel = (from: number, to: number): string => {
    for (let e = g.firstEdge[from]!; e < g.firstEdge[from + 1]!; e++) {
      if (g.edgeTo[e] !== to) continue;
      const t = g.edgeTypes[g.edgeType[e]!];
      if (t === 'element' || t === 'hidden') return '[]';
      const name = g.strings[g.edgeName[e]!] ?? '';
      // Map and Set entries are named by their key ("key -> value"): one entry stands for all.
      if (/ -> /.test(name) || /^\d+$/.test(name)) return '[]';
      return name.length > 40 ? '…' : name;
    }
    return '~';
  };
  const byPath = new Map<string, Owner>();
  const walk: Array<{ v: number; path: string; d: number }> = [{ v: 0, path: '', d: 0 }];
  while (walk.length > 0) {
    const { v, path, d } = walk.pop()!;
    if (v !== 0) {
      const o = byPath.get(path) ?? { path, depth: d, retained: 0, count: 0, sample: v, sampleRetained: 0 };
      o.retained += retained[v]!;
      if (retained[v]! > o.sampleRetained) {
        o.sample = v;
        o.sampleRetained = retained[v]!;
      }
      o.count++;
      byPath.set(path, o);
    }
    if (d >= depth) continue;
    for (let c = childCount[v]!; c < childCount[v + 1]!; c++) {
      const child = children[c]!;
      if (retained[child]! >= min) walk.push({ v: child, path: `${path} .${edgeLabel(v, child)} ${nodeLabel(child)}`, d: d + 1 });
    }
  }
  /** Who refers to `v`, and who to them, `levels` deep (the first few of each): for owners the root dominates (path "~"). */
  const retainers = (v: number, levels: number): string[] => {
    const out: string[] = [];
    const visit = (x: number, level: number, seen: Set<number>): void => {
      if (level > levels) return;
      let shown = 0;
      for (let p = predStart[x]!; p < predStart[x + 1]! && shown < 4; p++) {
        const from = preds[p]!;
        if (seen.has(from)) continue;
        shown++;
        out.push(`${'  '.repeat(level)}<- .${edgeLabel(from, x)} of ${nodeLabel(from)} (retains ${mib(retained[from]!)} MiB)`);
        visit(from, level + 1, new Set([...seen, from]));
      }
    };
    visit(v, 1, new Set([v]));
    return out;
  };
  return { total: retained[0]!, byPath, retainers };
}

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { 'min-mib': { type: 'string' }, depth: { type: 'string' }, 'min-per': { type: 'string' }, retainers: { type: 'string' }, who: { type: 'string' } },
});
const [a, b, perArg] = positionals;
if (!a || (b && !perArg)) {
  console.error('usage: heap-owners <a.heapsnapshot> [<b.heapsnapshot> <per>] [--min-mib 1] [--depth 14] [--min-per 100] [--retainers 3]');
  process.exit(2);
}
const min = Number(values['min-mib'] ?? 1) * 2 ** 20;
const depth = Number(values.depth ?? 14);
// --retainers <levels>: under each owner the root dominates (no one object holds it: path "~"), or
// each whose last step contains --who <text>, who refers to its biggest instance.
const levels = Number(values.retainers ?? 0);
const who = values.who;
const ask = (o: Owner): boolean => levels > 0 && (who ? o.path.slice(o.path.lastIndexOf(' .') + 1).includes(who) : o.depth === 1 && o.path.startsWith(' .~'));
const mib = (x: number): string => (x / 2 ** 20).toFixed(1);
/** The path's last step, indented by its depth: the tree reads top-down. */
const line = (o: Owner): string => `${'  '.repeat(o.depth - 1)}${o.path.slice(o.path.lastIndexOf(' .') + 1)}${o.count > 1 ? ` ×${o.count}` : ''}`;
const first = owners(await readGraph(a), min, depth);
// Paths sort as a tree: a path before the paths that extend it.
const sorted = (m: Map<string, Owner>): Owner[] => [...m.values()].sort((x, y) => (x.path < y.path ? -1 : 1));
if (!b) {
  console.log(`${a}: ${mib(first.total)} MiB reachable; owners retaining at least ${mib(min)} MiB:`);
  for (const o of sorted(first.byPath)) {
    console.log(`${mib(o.retained).padStart(8)} MiB  ${line(o)}`);
    if (ask(o)) for (const r of first.retainers(o.sample, levels)) console.log(`              ${r}`);
  }
} else {
  const second = owners(await readGraph(b), min, depth);
  const per = Number(perArg);
  const minPer = Number(values['min-per'] ?? 100);
  console.log(
    `${b} - ${a}: ${mib(second.total)} - ${mib(first.total)} MiB reachable, ${((second.total - first.total) / per).toFixed(0)} bytes per one of ${per}`,
  );
  console.log(`owners whose difference is at least ${minPer} bytes per one (bytes per one, MiB in a -> b):`);
  const union = new Map(first.byPath);
  for (const [k, o] of second.byPath) if (!union.has(k)) union.set(k, o);
  for (const o of sorted(union)) {
    const ra = first.byPath.get(o.path)?.retained ?? 0;
    const rb = second.byPath.get(o.path)?.retained ?? 0;
    const d = (rb - ra) / per;
    if (Math.abs(d) < minPer) continue;
    console.log(`${d.toFixed(0).padStart(8)} B  ${mib(ra).padStart(7)} -> ${mib(rb).padStart(7)}  ${line(o)}`);
    const held = second.byPath.get(o.path);
    if (held && ask(held)) for (const r of second.retainers(held.sample, levels)) console.log(`                             ${r}`);
  }
}
