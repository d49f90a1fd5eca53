/**
 * A fleet process: spawned in its own process group (so the terminal's Ctrl-C reaches only the
 * launcher, which then stops everything in order), output appended to its log file, pid file.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { stopPid, writePidFile } from './pids.js';

/** A process the launcher started. */
export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<string>;
  /** True once it has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after timeoutMs. */
  stop(timeoutMs: number): Promise<void>;
}

/** What to run. */
export interface ProcessSpec {
  name: string;
  script: string;
  args: readonly string[];
  env?: Record<string, string>;
  logFile: string;
  pidFile: string;
}

/** Starts `node <script> <args>` as described. */
export function startProcess(spec: ProcessSpec): ManagedProcess {
  const log = fs.openSync(spec.logFile, 'a');
  fs.writeSync(log, `\n--- ${new Date().toISOString()} starting ${spec.name}: ${spec.args.join(' ')}\n`);
  const child = spawn(process.execPath, [spec.script, ...spec.args], {
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', log, log],
    detached: true,
  });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name} (node ${spec.script})`);
  const pid = child.pid;
  writePidFile(spec.pidFile, pid);
  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      fs.rmSync(spec.pidFile, { force: true });
      resolve(signal ?? `exit code ${code}`);
    });
  });
  return {
    name: spec.name,
    pid,
    logFile: spec.logFile,
    exited,
    hasExited: () => done,
    async stop(timeoutMs) {
      if (done) return;
      await stopPid(pid, 'SIGTERM', timeoutMs);
      await exited;
    },
  };
}

/** The last lines of a log file, to show why a process failed. */
export function logTail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}
