import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { projectConfig, sourceResolution } from '../vitest.shared.js';
import { FLEET_WORKERS, LongestFirstSequencer, NAMESPACE_SCENARIOS } from './scenario-order.js';

// One fleet per test file, each several processes plus postgres instances; inside a file, scenarios
// share the fleet and run in order. Files run in two projects (scenario-order.ts says why):
//   fleets  every file but the namespace ones, FLEET_WORKERS at a time, longest first;
//   netns   the network-namespace files, after all of the fleets, one at a time.
// Each project is written out whole: `extends: true` would concatenate the include lists.
const root = import.meta.dirname;
// Nets, not expectations: a test of 20 s on a quiet machine took over 90 s at a load average of 60
// beside another file, and hung tests are rare enough that the longer wait costs little.
const timeouts = { testTimeout: 300_000, hookTimeout: 180_000 };
const base = projectConfig(root, { ...timeouts, sequence: { sequencer: LongestFirstSequencer } });

const project = (name: string, test: NonNullable<TestProjectInlineConfiguration['test']>): TestProjectInlineConfiguration => ({
  ...sourceResolution(),
  // Isolated: each file's fleet, harness and module state are its own.
  test: { name, root, environment: 'node', include: ['src/**/*.test.ts'], isolate: true, ...timeouts, ...test },
});

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    projects: [
      project('fleets', { exclude: [...NAMESPACE_SCENARIOS], maxWorkers: FLEET_WORKERS, sequence: { groupOrder: 0 } }),
      project('netns', { include: [...NAMESPACE_SCENARIOS], maxWorkers: 1, sequence: { groupOrder: 1 } }),
    ],
  },
});
