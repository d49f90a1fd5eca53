/** Where the built apps are: the suite runs them exactly as an operator would. */
import fs from 'node:fs';
import path from 'node:path';

/** The repository root (test/src/harness -> ../../..). */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

/** dist/main.js of each app and tool the suite starts. */
export const SCRIPTS = Object.freeze({
  coordinator: path.join(REPO_ROOT, 'apps', 'coordinator', 'dist', 'main.js'),
  agent: path.join(REPO_ROOT, 'apps', 'host-agent', 'dist', 'main.js'),
  router: path.join(REPO_ROOT, 'apps', 'router', 'dist', 'main.js'),
  pgsctl: path.join(REPO_ROOT, 'tools', 'pgsctl', 'dist', 'main.js'),
});

/** One of the scripts the suite runs. */
export type ScriptName = keyof typeof SCRIPTS;

/** The names (of those asked for, default all) whose dist/main.js is missing: not built, or not landed. */
export function missingBuilds(names: readonly ScriptName[] = Object.keys(SCRIPTS) as ScriptName[]): ScriptName[] {
  return names.filter((name) => !fs.existsSync(SCRIPTS[name]));
}

/** Throws with the build command when something the suite starts is not built. */
export function requireBuilt(names?: readonly ScriptName[]): void {
  const missing = missingBuilds(names);
  if (missing.length > 0) {
    throw new Error(`not built: ${missing.join(', ')}; run \`npm test\` (it builds first) or \`NX_DAEMON=false npx nx run-many -t build\``);
  }
}
