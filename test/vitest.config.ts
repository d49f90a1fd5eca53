import { projectConfig } from '../vitest.shared.js';

// One fleet per test file, each several processes plus postgres instances: on CI's 2 cores the
// files run one after another (inside a file, scenarios share the fleet and run in order).
export default projectConfig(import.meta.dirname, {
  fileParallelism: false,
  testTimeout: 90_000,
  hookTimeout: 180_000,
});
