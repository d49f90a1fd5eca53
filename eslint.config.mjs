// One lint config for the whole workspace. Module boundaries are the architecture:
// apps -> libs -> nothing; the pure libs (wire-protocol, tenancy) touch no I/O.
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const ioModules = [
  'net',
  'tls',
  'fs',
  'fs/promises',
  'dgram',
  'http',
  'http2',
  'https',
  'child_process',
  'cluster',
  'worker_threads',
  'dns',
  'os',
  'process',
  'readline',
  'perf_hooks',
].flatMap((m) => [m, `node:${m}`]);

// Apps are composition roots and processes: nothing imports them (tests start them as processes).
const appPackages = ['@pgs/coordinator', '@pgs/host-agent', '@pgs/router', '@pgs/pgsctl', '@pgs/local-fleet', '@pgs/e2e', '@pgs/bench'];
const appImportRule = (name) => ({ name, message: 'Apps are never imported: depend on a lib, or start the app as a process.' });

const ioPackages = ['pino', 'pg', 'better-sqlite3', 'dockerode', '@grpc/grpc-js', 'prom-client', '@pgs/proto', '@pgs/rpc', '@pgs/service-kit'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/src/gen/**', '**/node_modules/**', '**/vitest.config.ts', '.nx/**', '.pgs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    plugins: { '@nx': nx, 'import-x': importX },
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    settings: {
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          noWarnOnMultipleProjects: true,
          project: [`${import.meta.dirname}/*/*/tsconfig.spec.json`, `${import.meta.dirname}/*/tsconfig.spec.json`],
          conditionNames: ['@pgs/source', 'types', 'import', 'default'],
        }),
      ],
    },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:contract', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'scope:pure', onlyDependOnLibsWithTags: ['scope:pure'] },
            { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib', 'type:contract'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib', 'type:contract'] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:lib', 'type:contract'] },
            { sourceTag: 'type:bench', onlyDependOnLibsWithTags: ['type:lib', 'type:contract'] },
            // End-to-end tests are black-box: they start built apps as processes and import no project.
            { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: [] },
          ],
        },
      ],
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
      'no-restricted-imports': ['error', { paths: appPackages.map(appImportRule) }],
      'no-throw-literal': 'error',
    },
  },
  {
    // The coordinator's store is async: a promise nobody awaits is a write that may land after its
    // transaction ended, or an error nobody sees.
    files: ['apps/coordinator/src/**/*.ts'],
    languageOptions: { parserOptions: { project: ['apps/coordinator/tsconfig.spec.json'], tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // The coordinator's layers (see apps/coordinator/README.md "Layout"): the store and the domain
    // decisions know nothing of the services or the transport above them, and live state (what
    // agents and routers last reported, in memory) stands alone.
    files: ['apps/coordinator/src/store/**/*.ts', 'apps/coordinator/src/domain/**/*.ts', 'apps/coordinator/src/live/**/*.ts'],
    ignores: ['**/*.test.ts', '**/testing/**', 'apps/coordinator/src/store/contract/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: appPackages.map(appImportRule),
          patterns: [
            {
              group: ['**/transport/**', '**/services/**', '**/security/**'],
              message: 'The store, domain and live layers never import services, transport or security: pass what they need in.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/coordinator/src/domain/**/*.ts', 'apps/coordinator/src/live/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: appPackages.map(appImportRule),
          patterns: [
            {
              group: ['**/transport/**', '**/services/**', '**/security/**', '**/store/**'],
              message: 'Domain decisions and live state take values, not the store: the services read and pass them in.',
            },
          ],
        },
      ],
    },
  },
  {
    // The coordinator's dashboard: a browser ES module served as is (no build step).
    files: ['apps/*/ui/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        sessionStorage: 'readonly',
        fetch: 'readonly',
        Node: 'readonly',
        TextDecoderStream: 'readonly',
      },
    },
  },
  {
    // The pure libs: bytes in, values out. No sockets, files, processes, loggers or clocks.
    files: ['libs/wire-protocol/src/**/*.ts', 'libs/tenancy/src/**/*.ts'],
    ignores: ['**/*.test.ts', '**/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...[...ioModules, ...ioPackages].map((name) => ({ name, message: 'The pure libs import no I/O: pass values in, return values out.' })),
            ...appPackages.map(appImportRule),
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Libs never read process.env or process state; take it as a parameter.' },
        { name: 'setTimeout', message: 'No timers in the pure libs; the caller owns time.' },
        { name: 'setInterval', message: 'No timers in the pure libs; the caller owns time.' },
      ],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'No clock in the pure libs: pass `now` in.' }],
    },
  },
);
