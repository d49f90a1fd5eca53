/**
 * Pid files and stopping processes by pid, only ever the processes this fleet started: a pid is
 * signalled only when /proc/<pid>/cmdline still shows the program we started (pids get reused).
 */
import fs from 'node:fs';

/** Polling step while waiting for a process to exit. */
const POLL_MS = 100;

/** True when a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a process, '' when it is gone. */
export function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return '';
    throw err;
  }
}

/** Writes a pid file: just the pid, so `kill $(cat .pgs/local/pids/h2.pid)` works. */
export function writePidFile(file: string, pid: number): void {
  fs.writeFileSync(file, `${pid}\n`);
}

/** Reads a pid file; undefined when missing or not a pid (a torn write from a crash). */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when `pid` runs and its command line contains `match` (so a reused pid is never signalled). */
export function isOurs(pid: number, match: string): boolean {
  return isAlive(pid) && commandLine(pid).includes(match);
}

/** Waits until `pid` is gone; false after timeoutMs. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

/**
 * Sends `signal`, waits up to timeoutMs, then SIGKILL. Resolves once the process is gone.
 * Returns how it ended: 'signal' (it obeyed), 'killed', or 'gone' (was not running).
 */
export async function stopPid(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<'signal' | 'killed' | 'gone'> {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
    throw err;
  }
  if (await waitGone(pid, timeoutMs)) return 'signal';
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await waitGone(pid, 5000);
  return 'killed';
}
