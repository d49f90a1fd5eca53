/**
 * Pid files and stopping processes by pid, only ever the processes this fleet started: a pid is
 * signalled only when /proc/<pid>/cmdline still shows what we expect (pids get reused).
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

/** What a pid file records: the pid and a string its command line must contain. */
export interface PidRecord {
  pid: number;
  match: string;
}

/** Writes a pid file. */
export function writePidFile(file: string, record: PidRecord): void {
  fs.writeFileSync(file, `${JSON.stringify(record)}\n`);
}

/** Reads a pid file; undefined when missing or unreadable (a torn write from a crash). */
export function readPidFile(file: string): PidRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const data = JSON.parse(text) as Partial<PidRecord>;
    return typeof data.pid === 'number' && typeof data.match === 'string' ? { pid: data.pid, match: data.match } : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** True when the recorded process still runs and is still ours. */
export function isOurs(record: PidRecord): boolean {
  return isAlive(record.pid) && commandLine(record.pid).includes(record.match);
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
