/**
 * Where the PostgreSQL server binaries are: every bin directory the `--postgres-bin-dirs` patterns
 * name (the distribution's /usr/lib/postgresql/<major>/bin, the versions directory the repo's
 * setup script fills), or one explicit override; for each major its server version and the tools
 * of the same major beside it (pg_basebackup, pg_rewind: an older pg_basebackup refuses a newer
 * server, "incompatible server version"), and whether the host's pgBackRest can back it up.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pgbackrestMaxMajor, type HostMajor } from '@pgs/tenancy';
import { AgentError, messageOf } from '../errors.js';

/** One major the host can run. */
export interface InstalledMajor extends HostMajor {
  binDir: string;
}

/** The installed server majors and their bin dirs. */
export interface PostgresInstall {
  /** The major used when a spec names none (the newest with its replication tools, or the override's). */
  defaultMajor: string;
  /** bin dir by major id ('15' -> /usr/lib/postgresql/15/bin). */
  binDirs: ReadonlyMap<string, string>;
  /** Every major found, newest first. */
  majors: readonly InstalledMajor[];
  /** `pgbackrest version` ("2.45"); '' when it is not installed. */
  pgbackrestVersion: string;
}

/** The default patterns: the Debian layout, then the versions directory of setup-postgres-versions.sh. */
export const DEFAULT_BIN_DIR_PATTERNS = ['/usr/lib/postgresql/*/bin', '/var/lib/pgs/postgres/*/bin'] as const;

/** The server version of a bin dir, from `postgres --version` ("postgres (PostgreSQL) 15.14 ..."). */
function serverVersionOf(binDir: string): { major: string; version: string } {
  const out = execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /\(PostgreSQL\)\s+((\d+)(?:\.\d+)?)/.exec(out);
  if (!m?.[1] || !m[2]) throw new AgentError('VERSION_NOT_INSTALLED', `cannot read the major version from "${out.trim()}"`);
  return { major: m[2], version: m[1] };
}

/** Expands a pattern whose path segments may be `*` (one directory level each); plain paths pass through. */
export function expandBinDirPattern(pattern: string): string[] {
  const abs = path.resolve(pattern);
  const segments = abs.split(path.sep).slice(1);
  let found: string[] = [path.sep];
  for (const segment of segments) {
    const next: string[] = [];
    for (const base of found) {
      if (segment !== '*') {
        next.push(path.join(base, segment));
        continue;
      }
      let entries: string[] = [];
      try {
        entries = fs.readdirSync(base).sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
      }
      for (const e of entries) if (!e.startsWith('.')) next.push(path.join(base, e));
    }
    found = next;
  }
  return found;
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    // Absent or not executable: the tool is simply not there.
    return false;
  }
}

/** `pgbackrest version` as "2.45", or '' when it is not on PATH. */
export function detectPgbackrestVersion(bin = 'pgbackrest'): string {
  try {
    const out = execFileSync(bin, ['version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /pgBackRest\s+(\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1] ?? '';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new AgentError('RUNTIME_ERROR', `pgbackrest version failed: ${messageOf(err)}`, { cause: err });
  }
}

/** What one bin dir holds. */
function inspect(binDir: string, pgbackrestVersion: string): InstalledMajor {
  const { major, version } = serverVersionOf(binDir);
  const maxBackup = pgbackrestMaxMajor(pgbackrestVersion);
  return {
    major,
    serverVersion: version,
    binDir,
    pgBasebackup: executable(path.join(binDir, 'pg_basebackup')),
    pgRewind: executable(path.join(binDir, 'pg_rewind')) && executable(path.join(binDir, 'pg_controldata')),
    pgbackrest: maxBackup !== undefined && Number(major) <= maxBackup,
    pgDump: executable(path.join(binDir, 'pg_dump')) && executable(path.join(binDir, 'psql')),
    pgUpgrade: executable(path.join(binDir, 'pg_upgrade')),
  };
}

/**
 * Finds the server binaries: `override` (one bin dir) wins; else every bin dir the patterns name
 * that holds postgres and initdb. Two dirs of one major: the first pattern's wins.
 */
export function findPostgresInstall(patterns: readonly string[], override?: string, pgbackrestVersion = detectPgbackrestVersion()): PostgresInstall {
  const found = new Map<string, InstalledMajor>();
  if (override !== undefined) {
    if (!fs.existsSync(path.join(override, 'postgres'))) throw new AgentError('VERSION_NOT_INSTALLED', `--pg-bin-dir ${override} has no postgres binary`);
    const m = inspect(override, pgbackrestVersion);
    return { defaultMajor: m.major, binDirs: new Map([[m.major, override]]), majors: [m], pgbackrestVersion };
  }
  for (const pattern of patterns) {
    for (const binDir of expandBinDirPattern(pattern)) {
      if (!executable(path.join(binDir, 'postgres')) || !executable(path.join(binDir, 'initdb'))) continue;
      const m = inspect(binDir, pgbackrestVersion);
      if (!found.has(m.major)) found.set(m.major, m);
    }
  }
  const majors = [...found.values()].sort((a, b) => Number(b.major) - Number(a.major));
  if (majors.length === 0)
    throw new AgentError(
      'VERSION_NOT_INSTALLED',
      `no PostgreSQL server binaries (postgres and initdb) in ${patterns.join(', ')}; install the postgresql server package, or pass --postgres-bin-dirs or --pg-bin-dir`,
    );
  // Spares are prepared for the default: the newest major this host can do everything with.
  const fullest = majors.find((m) => m.pgBasebackup && m.pgRewind) ?? majors[0];
  return { defaultMajor: (fullest as InstalledMajor).major, binDirs: new Map(majors.map((m) => [m.major, m.binDir])), majors, pgbackrestVersion };
}

/** The bin dir for a spec's version ('' = default); a major the host lacks is a clear error. */
export function binDirFor(install: PostgresInstall, version: string): { major: string; binDir: string } {
  const major = version === '' ? install.defaultMajor : version;
  const binDir = install.binDirs.get(major);
  if (!binDir)
    throw new AgentError(
      'VERSION_NOT_INSTALLED',
      `PostgreSQL ${major} is not installed on this host (installed: ${[...install.binDirs.keys()].join(', ') || 'none'})`,
    );
  return { major, binDir };
}
