import path from 'node:path';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * Shared vitest settings. Workspace packages resolve to their TypeScript sources
 * (the `@pgs/source` export condition), so unit tests never need a build first.
 * Every project also writes a JSON report that `.ci/run` sums into one totals line.
 */
export function projectConfig(projectDir: string, overrides: ViteUserConfig['test'] = {}): ViteUserConfig {
  const workspaceRoot = import.meta.dirname;
  const reportName = path.relative(workspaceRoot, projectDir).replaceAll('/', '__') || 'root';
  return defineConfig({
    ...sourceResolution(),
    test: {
      root: projectDir,
      include: ['src/**/*.test.ts'],
      environment: 'node',
      testTimeout: 30_000,
      hookTimeout: 60_000,
      reporters: ['default', 'json'],
      outputFile: { json: path.join(workspaceRoot, '.reports', `${reportName}.json`) },
      passWithNoTests: true,
      // A project's test files share their worker's modules instead of importing every source
      // again per file: re-imports were a fifth of the coordinator's suite (121 s of 573 s in CI).
      // Sound while no test mocks a module or changes process-wide state (no vi.mock, stubEnv,
      // stubGlobal or fake timers anywhere); a test that needs them passes `isolate: true`.
      isolate: false,
      ...overrides,
    },
  });
}

/** Workspace packages resolve to their TypeScript sources: Vite's default server conditions, with ours first. */
export function sourceResolution(): Pick<ViteUserConfig, 'resolve' | 'ssr'> {
  const conditions = ['@pgs/source', 'module', 'node', 'development|production'];
  return { resolve: { conditions }, ssr: { resolve: { conditions, externalConditions: ['@pgs/source'] } } };
}
