/**
 * The release artifacts (`npm run package`: one tarball per component under dist/) and installing
 * them as an operator would: unpacked under <machine>/opt/<release>, with <machine>/opt/pgs a
 * symlink to the release in use, switched atomically for an upgrade.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './repo.js';

/** The components a release ships. */
export type Component = 'coordinator' | 'agent' | 'router' | 'pgsctl';

/** The release version (the repository's). */
export const RELEASE_VERSION: string = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The tarball of one component. */
export function releaseTarball(component: Component): string {
  return path.join(REPO_ROOT, 'dist', `pgs-${component}-${RELEASE_VERSION}-${process.platform}-${process.arch}.tar.gz`);
}

/** Throws with the command to run when a tarball is missing. */
export function requireRelease(components: readonly Component[]): void {
  const missing = components.filter((c) => !fs.existsSync(releaseTarball(c)));
  if (missing.length > 0) {
    throw new Error(
      `release artifacts missing (${missing.map((c) => path.relative(REPO_ROOT, releaseTarball(c))).join(', ')}); run \`npm test\` (it builds and packages first) or \`NX_DAEMON=false npx nx run-many -t build\` (the @pgs/deploy build packages)`,
    );
  }
}

/**
 * Unpacks the components' tarballs into <machineRoot>/opt/<releaseDir> and points
 * <machineRoot>/opt/pgs at it (a new symlink renamed over the old one, so it is never missing).
 */
export function installRelease(machineRoot: string, components: readonly Component[], releaseDir = `pgs-${RELEASE_VERSION}`): string {
  const opt = path.join(machineRoot, 'opt');
  fs.mkdirSync(opt, { recursive: true, mode: 0o755 });
  const staging = fs.mkdtempSync(path.join(opt, '.unpack-'));
  try {
    for (const c of components) execFileSync('tar', ['-C', staging, '-xzf', releaseTarball(c)]);
    const target = path.join(opt, releaseDir);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(path.join(staging, `pgs-${RELEASE_VERSION}`), target);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  const link = path.join(opt, 'pgs');
  const next = path.join(opt, '.pgs-next');
  fs.rmSync(next, { force: true });
  fs.symlinkSync(releaseDir, next);
  fs.renameSync(next, link);
  return link;
}

/** The release <machineRoot>/opt/pgs points at. */
export function installedRelease(machineRoot: string): string {
  return fs.readlinkSync(path.join(machineRoot, 'opt', 'pgs'));
}
