// pgsctl as a user meets it, on a real local fleet (coordinator, 2 host agents on the process
// runtime, 1 router): the start-up of `pgsctl version` and `pgsctl tenant list` (each a new
// process, as from a shell), and the whole `pgsctl tenant create <id> --access enabled --wait`
// followed by the first `psql` query through the router, both processes included.
// Goals: version under 150 ms and tenant list under 300 ms (p50); create --wait -> first query p50
// under 0.5 s.
//
//   npm run bench:cli -w bench          (PGS_BENCH_RUNS=10)
//
// pgsctl runs as `./pgsctl` does (node tools/pgsctl/bin/pgsctl.js, the bundled build); psql is the
// one on PATH. Each create starts from a fleet at rest: every host's pool of ready spares full.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { poll, withFleet, type BenchFleet } from './fleet-launcher.js';
import { report, summarize, verdict } from './fleet-report.js';

const N = Number(process.env.PGS_BENCH_RUNS ?? 10);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PGSCTL = path.join(REPO, 'tools', 'pgsctl', 'bin', 'pgsctl.js');
const PASSWORD = 'bench-cli-secret-1';

interface Run {
  code: number;
  ms: number;
  stderr: string;
}

/** Runs a command to its exit; the time is the wall time of the whole process. */
function timed(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 120_000 }, (err, _stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`${file} could not run: ${err.message}`, { cause: err }));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, ms: performance.now() - start, stderr });
    });
  });
}

function pgsctl(fleet: BenchFleet, args: readonly string[]): Promise<Run> {
  const env = { ...process.env, PGS_COORDINATOR: fleet.grpc, PGS_INSECURE: '1', PGS_TOKEN_FILE: path.join(fleet.root, 'admin.token'), NO_COLOR: '1' };
  return timed(process.execPath, [PGSCTL, ...args], env);
}

function psql(fleet: BenchFleet, id: string): Promise<Run> {
  const router = fleet.routers[0];
  if (!router) throw new Error('no router');
  const env = { ...process.env, PGPASSWORD: PASSWORD, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' };
  return timed('psql', ['-X', '-w', '-At', '-h', router.host, '-p', String(router.port), '-U', id, '-d', id, '-c', 'select 1'], env);
}

/** Waits until every host reports a full pool of ready spares (the fleet at rest). */
async function atRest(fleet: BenchFleet): Promise<void> {
  await poll(
    'every host with a full spare pool',
    async () => {
      const { hosts } = await fleet.client.listHosts({});
      return hosts.length > 0 && hosts.every((h) => (h.readySpares ?? 8) >= 8);
    },
    180_000,
    200,
  );
}

async function repeat(n: number, fn: (i: number) => Promise<Run>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fn(i);
    if (r.code !== 0) throw new Error(`run ${i} exited ${r.code}: ${r.stderr.trim()}`);
    out.push(r.ms);
  }
  return out;
}

await withFleet({ name: 'cli', block: 36, agents: 2, routers: 1 }, async (fleet) => {
  // One untimed run of each first: the first start of node reads the files from disk.
  await pgsctl(fleet, ['version']);
  await pgsctl(fleet, ['tenant', 'list']);
  // What starting any node process costs on this machine now: the floor under the two below.
  const node = await repeat(N, () => timed(process.execPath, ['-e', '0'], process.env));
  const version = await repeat(N, () => pgsctl(fleet, ['version']));
  const list = await repeat(N, () => pgsctl(fleet, ['tenant', 'list']));

  const createMs: number[] = [];
  const queryMs: number[] = [];
  const totalMs: number[] = [];
  let retries = 0;
  for (let i = 0; i < N; i++) {
    await atRest(fleet);
    const id = `cli-${i}`;
    const start = performance.now();
    const created = await pgsctl(fleet, ['tenant', 'create', id, '--cpu', '1', '--memory', '512Mi', '--password', PASSWORD, '--access', 'enabled', '--wait']);
    if (created.code !== 0) throw new Error(`create ${id} exited ${created.code}: ${created.stderr.trim()}`);
    createMs.push(created.ms);
    // As a user would: psql right after --wait returned; a refusal (route not at the router yet) is retried and counted.
    let q = await psql(fleet, id);
    while (q.code !== 0) {
      retries++;
      if (performance.now() - start > 60_000) throw new Error(`psql to ${id} still failing: ${q.stderr.trim()}`);
      q = await psql(fleet, id);
    }
    queryMs.push(q.ms);
    totalMs.push(performance.now() - start);
  }

  const ms = (v: number): number => Math.round(v);
  const n0 = summarize(node);
  const v = summarize(version);
  const l = summarize(list);
  const c = summarize(createMs);
  const q = summarize(queryMs);
  const t = summarize(totalMs);
  report('cli', {
    tables: [
      {
        title: `pgsctl start-up (ms, a new process each run, ${N} runs)`,
        columns: ['command', 'p50', 'p99', 'max', 'goal'],
        rows: [
          ['node -e 0 (the floor)', ms(n0.p50), ms(n0.p99), ms(n0.max), ''],
          ['pgsctl version', ms(v.p50), ms(v.p99), ms(v.max), `p50<150 ${verdict(v.p50 < 150)}`],
          ['pgsctl tenant list', ms(l.p50), ms(l.p99), ms(l.max), `p50<300 ${verdict(l.p50 < 300)}`],
        ],
      },
      {
        title: `tenant create --wait -> first psql query through the router (ms, ${N} tenants, both processes included)`,
        columns: ['part', 'p50', 'p99', 'max', 'goal'],
        rows: [
          ['pgsctl tenant create --access enabled --wait', ms(c.p50), ms(c.p99), ms(c.max), ''],
          ['psql -c "select 1" (the one that worked)', ms(q.p50), ms(q.p99), ms(q.max), ''],
          [`whole (psql retries: ${retries})`, ms(t.p50), ms(t.p99), ms(t.max), `p50<500 ${verdict(t.p50 < 500)}`],
        ],
      },
    ],
    data: {
      runs: N,
      nodeMs: node,
      versionMs: version,
      listMs: list,
      createMs,
      queryMs,
      totalMs,
      psqlRetries: retries,
      version: v,
      list: l,
      create: c,
      query: q,
      total: t,
    },
  });
});
