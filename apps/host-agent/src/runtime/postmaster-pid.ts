/**
 * postmaster.pid and whether the process it names is really this data directory's postmaster.
 * The file's lines (PostgreSQL src/include/utils/pidfile.h): pid, data dir, start time, port,
 * socket dir, listen address, shmem key, status ("starting", "ready", "stopping").
 * After a crash the file stays behind; its pid may be dead, or reused by any other process,
 * which is why the agent checks /proc before trusting it.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The parsed postmaster.pid. */
export interface PostmasterPidFile {
  pid: number;
  dataDir: string;
  port: number;
  socketDir: string;
  /** 'starting' | 'ready' | 'stopping' | '' (not yet written). */
  status: string;
}

/** The path of a data directory's pid file. */
export function pidFilePath(dataDir: string): string {
  return path.join(dataDir, 'postmaster.pid');
}

/** Reads postmaster.pid, or undefined when it is absent or half-written. */
export function readPostmasterPid(dataDir: string): PostmasterPidFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(pidFilePath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, dataDir: lines[1] ?? '', port: Number(lines[3] ?? 0), socketDir: lines[4] ?? '', status: (lines[7] ?? '').trim() };
}

/** True when `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces or parens).
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * True when `pid` is a live postgres whose working directory is `dataDir` (the postmaster
 * chdirs into its data directory), so a pid reused by another process is never mistaken for it.
 */
export function isPostmasterOf(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    if (path.basename(argv0) !== 'postgres') return false;
    return fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(dataDir);
  } catch (err) {
    // The process exited between the checks, or /proc hides it from us: it is not ours to adopt.
    if (['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
}

/** The running postmaster of `dataDir`: its pid file when the pid is really that postmaster. */
export function runningPostmaster(dataDir: string): PostmasterPidFile | undefined {
  const file = readPostmasterPid(dataDir);
  return file && isPostmasterOf(file.pid, dataDir) ? file : undefined;
}
