/**
 * One app of the fleet as a child process: `node apps/<app>/dist/main.js <args>`, stdout and stderr
 * appended to its own log file (kept across restarts, with a marker line per start), killed by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { isAlive, signal } from './proc-scan.js';

/** How to start an app. */
export interface AppSpec {
  /** Short name for logs and errors, e.g. "agent h1". */
  name: string;
  script: string;
  args: readonly string[];
  logFile: string;
  cwd: string;
  env?: Readonly<Record<string, string>>;
  /**
   * Runs node through this command (e.g. `ip netns exec <ns>`); the wrapper must exec node in its
   * own place so the pid stays the app's (as `ip netns exec` does).
   */
  wrapper?: readonly string[];
}

/** A started (or stopped) app process that can be killed and started again with the same spec. */
export class AppProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<number | null> = Promise.resolve(null);
  private starts = 0;

  constructor(readonly spec: AppSpec) {}

  /** The current pid; undefined when not running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process (again). */
  start(extraEnv: Readonly<Record<string, string>> = {}): void {
    if (this.running) throw new Error(`${this.spec.name} is already running (pid ${this.child?.pid})`);
    this.starts += 1;
    fs.appendFileSync(this.spec.logFile, `\n===== ${this.spec.name}: start #${this.starts} at ${new Date().toISOString()}: ${this.spec.args.join(' ')}\n`);
    const fd = fs.openSync(this.spec.logFile, 'a');
    try {
      const [command, ...prefix] = [...(this.spec.wrapper ?? []), process.execPath];
      const child = spawn(command as string, [...prefix, this.spec.script, ...this.spec.args], {
        cwd: this.spec.cwd,
        env: { ...process.env, ...this.spec.env, ...extraEnv },
        stdio: ['ignore', fd, fd],
      });
      this.child = child;
      this.exit = new Promise((resolve) => {
        child.once('exit', (code, sig) => {
          fs.appendFileSync(this.spec.logFile, `===== ${this.spec.name}: exited code=${code} signal=${sig}\n`);
          resolve(code);
        });
        child.once('error', (err) => {
          fs.appendFileSync(this.spec.logFile, `===== ${this.spec.name}: spawn error ${err.message}\n`);
          resolve(null);
        });
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Resolves when the current process has exited, with its exit code (null after a signal). */
  exited(): Promise<number | null> {
    return this.exit;
  }

  /** Sends `sig` and waits for the exit; SIGKILL after graceMs if it is still there. */
  async kill(sig: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) return;
    signal(pid, sig);
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
    if ((await Promise.race([this.exit.then(() => 'exited' as const), timer])) === 'timeout' && isAlive(pid)) {
      fs.appendFileSync(this.spec.logFile, `===== ${this.spec.name}: did not exit within ${graceMs} ms of ${sig}; SIGKILL\n`);
      signal(pid, 'SIGKILL');
      await this.exit;
    }
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process: a host that stops answering without closing sockets. */
  freeze(frozen: boolean): void {
    const pid = this.pid;
    if (pid !== undefined) signal(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** The last `lines` lines of the log file. */
  tail(lines = 60): string {
    let text: string;
    try {
      text = fs.readFileSync(this.spec.logFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '(no log file)';
      throw err;
    }
    return text.split('\n').slice(-lines).join('\n');
  }
}
