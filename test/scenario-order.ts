/**
 * How the e2e files share the machine. Every file starts its own fleet on its own loopback block
 * (127.<PGS_TEST_NET>.<block>.x, its own instance port range, its own temp dir), so the ordinary
 * files run FLEET_WORKERS at a time. The files that build network namespaces (veth pairs, the
 * blackhole route of the whole 10.231.0.0/16 test range that each adds and removes, iptables DROP
 * rules, fixed ports inside the namespaces) and carry the suite's tightest timing bounds run after
 * the others, one at a time, with nothing beside them.
 *
 * Files start longest first, by the durations a quiet CI run measured (below), so the lanes end
 * together instead of a long file starting last while the other lane idles. A file missing from the
 * table counts as long and starts first; refresh the table from a CI log (`✓ src/... <ms>ms`).
 */
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** How many ordinary files run at once: PGS_E2E_WORKERS, else 2 (CI's two cores). */
export const FLEET_WORKERS = fleetWorkers(process.env['PGS_E2E_WORKERS']);

/** The files that run alone, after the others (paths relative to the test project). */
export const NAMESPACE_SCENARIOS: readonly string[] = [
  'src/scenarios/deploy.test.ts',
  'src/scenarios/coordinator-cut-off.test.ts',
  'src/scenarios/partition.test.ts',
];

/** Milliseconds each file took on a quiet two-core machine, run one after another (rehearsal CI run). */
export const QUIET_DURATIONS_MS: Readonly<Record<string, number>> = {
  'src/scenarios/backup.test.ts': 158_125,
  'src/scenarios/move.test.ts': 83_517,
  'src/scenarios/suspend.test.ts': 75_370,
  'src/scenarios/coordinator-ha.test.ts': 67_825,
  'src/scenarios/deploy.test.ts': 52_968,
  'src/scenarios/coordinator-cut-off.test.ts': 45_351,
  'src/scenarios/backup-s3.test.ts': 41_540,
  'src/scenarios/operators.test.ts': 37_053,
  'src/scenarios/failover.test.ts': 36_896,
  'src/scenarios/partition.test.ts': 36_775,
  'src/scenarios/images.test.ts': 35_884,
  'src/scenarios/host-faults.test.ts': 31_639,
  'src/scenarios/versions.test.ts': 30_576,
  'src/scenarios/upgrade.test.ts': 23_856,
  'src/scenarios/agent-crash.test.ts': 22_947,
  'src/scenarios/coordinator-outage.test.ts': 20_861,
  'src/scenarios/lifecycle.test.ts': 19_751,
  'src/scenarios/isolation.test.ts': 19_663,
  'src/scenarios/inner-tls.test.ts': 18_514,
  'src/scenarios/secrets-in-logs.test.ts': 17_971,
  'src/harness/harness.test.ts': 7_656,
  'src/harness/unit-runner.test.ts': 1_142,
};

function fleetWorkers(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 2;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`PGS_E2E_WORKERS=${raw}: expected how many e2e files may run at once, 1..8`);
  return n;
}

/** Longest first by QUIET_DURATIONS_MS (unknown files before all), then by path, so every run starts the same way. */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const key = (f: TestSpecification): { ms: number; rel: string } => {
      const rel = path.relative(root, f.moduleId);
      return { ms: QUIET_DURATIONS_MS[rel] ?? Number.POSITIVE_INFINITY, rel };
    };
    return [...files].sort((a, b) => {
      const groups = a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder;
      if (groups !== 0) return groups;
      const ka = key(a);
      const kb = key(b);
      if (ka.ms !== kb.ms) return ka.ms < kb.ms ? 1 : -1;
      return ka.rel < kb.rel ? -1 : ka.rel > kb.rel ? 1 : 0;
    });
  }
}
