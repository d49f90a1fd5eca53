/**
 * Finds the processes a fleet left behind by looking at /proc: anything whose working directory
 * or command line lies under the fleet's temp root. Postgres chdirs into its data directory and
 * its children inherit that, so this catches every backend, not only the postmaster.
 */
import fs from 'node:fs';

/** A process found under a root. */
export interface FoundProcess {
  pid: number;
  cmdline: string;
  cwd: string;
}

function readOrEmpty(read: () => string): string {
  try {
    return read();
  } catch (err) {
    // The process ended while we looked, or is a kernel thread without a cwd.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES') return '';
    throw err;
  }
}

/** Processes (other than this one) whose cwd or command line is under `root`. */
export function processesUnder(root: string): FoundProcess[] {
  const out: FoundProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = readOrEmpty(() => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim());
    const cwd = readOrEmpty(() => fs.readlinkSync(`/proc/${pid}/cwd`));
    if (cwd === root || cwd.startsWith(`${root}/`) || cmdline.includes(root)) out.push({ pid, cmdline, cwd });
  }
  return out;
}

/** True when the pid exists (zombies of our own children count as gone once reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = readOrEmpty(() => fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  // State field after the parenthesised name; Z = zombie, which no longer serves anything.
  return !/\) Z /.test(stat);
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGKILLs everything under `root` until nothing is left or timeoutMs passes; returns what was killed. */
export async function killAllUnder(root: string, timeoutMs = 10_000): Promise<FoundProcess[]> {
  const killed = new Map<number, FoundProcess>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = processesUnder(root).filter((p) => isAlive(p.pid));
    if (found.length === 0) return [...killed.values()];
    for (const p of found) {
      killed.set(p.pid, p);
      signal(p.pid, 'SIGKILL');
    }
    if (Date.now() >= deadline) return [...killed.values()];
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The postmaster pids recorded in postmaster.pid files under `dir` (live ones only). */
export function postmastersUnder(dir: string, depth = 6): Array<{ pid: number; dataDir: string }> {
  const out: Array<{ pid: number; dataDir: string }> = [];
  const walk = (d: string, left: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (err) {
      if (['ENOENT', 'ENOTDIR', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
      throw err;
    }
    for (const e of entries) {
      const full = `${d}/${e.name}`;
      if (e.isFile() && e.name === 'postmaster.pid') {
        const pid = Number(readOrEmpty(() => fs.readFileSync(full, 'utf8')).split('\n')[0]);
        if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) out.push({ pid, dataDir: d });
      } else if (e.isDirectory() && left > 0) walk(full, left - 1);
    }
  };
  walk(dir, depth);
  return out;
}
