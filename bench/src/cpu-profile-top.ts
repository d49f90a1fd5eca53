// The top of a V8 CPU profile (node --cpu-prof) of a proxy under load: self time per function,
// leaving out what is not the per-message path — idle time, start-up (module loading), and the
// socket write call itself (writeBuffer: the kernel's send, and on a loaded machine the time the
// process waits to run again after waking the reader, which a wall-clock sampler puts there). Not
// a test: it prints a table.
//
//   PGS_BENCH_ROUTER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" PGS_BENCH_COST_ONLY=cpu npm run bench:router-cost -w bench
//   npm run bench:profile-top -w bench -- /tmp/prof/<file>.cpuprofile [entries, default 20]
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Frames whose time is start-up, not serving: module loading and the router's own start. */
const STARTUP = /modules\/(cjs|esm)|translators|module_job|startRouter/;
/** Left out by name: waiting, and the write system call (see above). */
const LEFT_OUT = new Set(['(idle)', 'writeBuffer']);

const [file, entries = '20'] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-profile-top <file.cpuprofile> [entries]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

function inStartup(id: number): boolean {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const f = byId.get(at)!.callFrame;
    if (STARTUP.test(f.url) || STARTUP.test(f.functionName)) return true;
  }
  return false;
}

let total = 0;
let writes = 0;
const byFunction = new Map<string, number>();
for (const n of profile.nodes) {
  const us = selfUs.get(n.id) ?? 0;
  const f = n.callFrame;
  if (us === 0 || f.functionName === '(idle)' || inStartup(n.id)) continue;
  if (LEFT_OUT.has(f.functionName)) {
    writes += us;
    continue;
  }
  total += us;
  const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled on the serving path (the socket write call, ${(writes / 1000).toFixed(0)} ms, left out)`);
console.table(
  [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(entries))
    .map(([fn, us]) => ({ function: fn, 'self %': ((100 * us) / total).toFixed(1), 'self ms': (us / 1000).toFixed(0) })),
);
