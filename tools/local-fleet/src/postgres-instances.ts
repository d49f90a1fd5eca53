/**
 * The tenant postgres servers the agents started. Agents leave their instances running when
 * they stop (by design: a restarted agent adopts them), so the local fleet stops them itself
 * after the agents, found by the postmaster.pid files under the agents' data roots.
 */
import fs from 'node:fs';
import path from 'node:path';
import { commandLine, isAlive, stopPid } from './pids.js';

/** A running postmaster: its pid and data directory. */
export interface PostgresInstance {
  pid: number;
  dataDir: string;
}

function findPidFiles(dir: string, depth: number, out: string[]): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    // A data root not made yet, or a data dir only the postgres user may read (we are root here, so rare).
    if (['ENOENT', 'EACCES', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  for (const e of entries) {
    if (e.isFile() && e.name === 'postmaster.pid') out.push(path.join(dir, e.name));
    else if (e.isDirectory() && depth > 0) findPidFiles(path.join(dir, e.name), depth - 1, out);
  }
}

/** The postmasters running from data dirs under `roots` (searched 6 levels deep). */
export function findPostgresInstances(roots: readonly string[]): PostgresInstance[] {
  const files: string[] = [];
  for (const root of roots) findPidFiles(root, 6, files);
  const out: PostgresInstance[] = [];
  for (const file of files) {
    const firstLine = fs.readFileSync(file, 'utf8').split('\n')[0] ?? '';
    const pid = Number(firstLine.trim());
    // Only a live postgres process counts: a stale pid file from a crash may name a reused pid.
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && /postgres|postmaster/.test(commandLine(pid))) {
      out.push({ pid, dataDir: path.dirname(file) });
    }
  }
  return out;
}

/** Stops them with a fast shutdown (SIGINT), SIGKILL after timeoutMs; returns how many there were. */
export async function stopPostgresInstances(roots: readonly string[], timeoutMs: number): Promise<number> {
  const instances = findPostgresInstances(roots);
  await Promise.all(instances.map((i) => stopPid(i.pid, 'SIGINT', timeoutMs)));
  return instances.length;
}
