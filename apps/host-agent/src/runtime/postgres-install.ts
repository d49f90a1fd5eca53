/**
 * Where the PostgreSQL server binaries are: the newest major under the install root (Debian
 * layout /usr/lib/postgresql/<major>/bin), or an explicit override, and the bin dir of a major a
 * tenant asks for.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors.js';

/** The installed server majors and their bin dirs. */
export interface PostgresInstall {
  /** The major used when a spec names none (the newest, or the override's). */
  defaultMajor: string;
  /** bin dir by major id ('15' -> /usr/lib/postgresql/15/bin). */
  binDirs: ReadonlyMap<string, string>;
}

/** The major of a bin dir, from `postgres --version` ("postgres (PostgreSQL) 15.14 ..."). */
function majorOfBinDir(binDir: string): string {
  const out = execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(out);
  if (!m?.[1]) throw new AgentError('VERSION_NOT_INSTALLED', `cannot read the major version from "${out.trim()}"`);
  return m[1];
}

/** Finds the server binaries: `override` (a bin dir) wins, else every major under `root`. */
export function findPostgresInstall(root: string, override?: string): PostgresInstall {
  const binDirs = new Map<string, string>();
  if (fs.existsSync(root)) {
    for (const entry of fs.readdirSync(root)) {
      const bin = path.join(root, entry, 'bin');
      if (/^\d+$/.test(entry) && fs.existsSync(path.join(bin, 'postgres')) && fs.existsSync(path.join(bin, 'initdb'))) binDirs.set(entry, bin);
    }
  }
  if (override !== undefined) {
    if (!fs.existsSync(path.join(override, 'postgres'))) throw new AgentError('VERSION_NOT_INSTALLED', `--pg-bin-dir ${override} has no postgres binary`);
    const major = majorOfBinDir(override);
    binDirs.set(major, override);
    return { defaultMajor: major, binDirs };
  }
  const majors = [...binDirs.keys()].sort((a, b) => Number(b) - Number(a));
  if (majors[0] === undefined) throw new AgentError('VERSION_NOT_INSTALLED', `no PostgreSQL server binaries under ${root}/<major>/bin; install the postgresql server package or pass --pg-bin-dir`);
  return { defaultMajor: majors[0], binDirs };
}

/** The bin dir for a spec's version ('' = default); a major the host lacks is a clear error. */
export function binDirFor(install: PostgresInstall, version: string): { major: string; binDir: string } {
  const major = version === '' ? install.defaultMajor : version;
  const binDir = install.binDirs.get(major);
  if (!binDir) throw new AgentError('VERSION_NOT_INSTALLED', `PostgreSQL ${major} is not installed on this host (installed: ${[...install.binDirs.keys()].join(', ') || 'none'})`);
  return { major, binDir };
}
