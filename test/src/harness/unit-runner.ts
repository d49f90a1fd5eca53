/**
 * Runs a systemd unit's service the way systemd would, without systemd: the unit file shipped in the
 * release is read (ExecStart, EnvironmentFile, KillSignal, KillMode, TimeoutStopSec, Restart,
 * RestartSec, RestartPreventExitStatus, StateDirectory), its absolute paths are moved under a
 * machine's root directory, and the command runs inside the machine's network namespace with only
 * the unit's environment. A small supervisor restarts it on failure as `Restart=on-failure` does;
 * stdout and stderr go to one log file (the journal's stand-in).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isAlive, signal } from './proc-scan.js';

/** The [Service] settings the runner honours. */
export interface ServiceUnit {
  execStart: string[];
  /** Environment files in order; `optional` is systemd's leading `-`. */
  environmentFiles: Array<{ file: string; optional: boolean }>;
  killSignal: NodeJS.Signals;
  killMode: 'control-group' | 'mixed' | 'process';
  timeoutStopMs: number;
  restart: 'no' | 'on-failure' | 'always';
  restartMs: number;
  restartPreventExitStatus: number[];
  stateDirectories: string[];
}

/** Parses a systemd time span as units use it here: "20s", "500ms", "1min", "2" (seconds). */
export function parseTimespan(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m)?$/.exec(text.trim());
  if (!m) throw new Error(`unit: "${text}" is not a time span this runner understands`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 'min' || unit === 'm' ? 60_000 : 1000));
}

/** Reads the [Service] section of a unit file. */
export function parseServiceUnit(text: string): ServiceUnit {
  const unit: ServiceUnit = {
    execStart: [],
    environmentFiles: [],
    killSignal: 'SIGTERM',
    killMode: 'control-group',
    timeoutStopMs: 90_000,
    restart: 'no',
    restartMs: 100,
    restartPreventExitStatus: [],
    stateDirectories: [],
  };
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case 'ExecStart':
        unit.execStart = value.split(/\s+/);
        break;
      case 'EnvironmentFile':
        unit.environmentFiles.push(value.startsWith('-') ? { file: value.slice(1), optional: true } : { file: value, optional: false });
        break;
      case 'KillSignal':
        unit.killSignal = value as NodeJS.Signals;
        break;
      case 'KillMode':
        unit.killMode = value as ServiceUnit['killMode'];
        break;
      case 'TimeoutStopSec':
        unit.timeoutStopMs = parseTimespan(value);
        break;
      case 'Restart':
        unit.restart = value as ServiceUnit['restart'];
        break;
      case 'RestartSec':
        unit.restartMs = parseTimespan(value);
        break;
      case 'RestartPreventExitStatus':
        unit.restartPreventExitStatus = value.split(/\s+/).map(Number);
        break;
      case 'StateDirectory':
        unit.stateDirectories.push(...value.split(/\s+/));
        break;
      default:
        break;
    }
  }
  if (unit.execStart.length === 0) throw new Error('unit: no ExecStart in [Service]');
  return unit;
}

/** Reads a systemd EnvironmentFile: KEY=value lines, # and ; comments, optional surrounding quotes. */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`environment file: "${line}" is not KEY=value`);
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) value = value.slice(1, -1);
    env[line.slice(0, eq).trim()] = value;
  }
  return env;
}

/** The environment systemd gives a service before its EnvironmentFiles (no inherited variables). */
const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** Where a unit runs: which machine (directory and network namespace) and where its output goes. */
export interface UnitPlacement {
  /** Name for logs, e.g. "pgs-agent@h1". */
  name: string;
  unitFile: string;
  /** The machine's root: /opt, /etc and /var paths of the unit are taken relative to it. */
  machineRoot: string;
  netns: string;
  logFile: string;
}

/** How one run of the service ended. */
export interface UnitExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One supervised service: start, stop (as `systemctl stop`), and restarts on failure. */
export class UnitRunner {
  readonly unit: ServiceUnit;
  private child: ChildProcess | undefined;
  private exit: Promise<UnitExit> = Promise.resolve({ code: null, signal: null });
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Restarts the supervisor made after a failure (not the ones asked for). */
  failureRestarts = 0;

  constructor(readonly placement: UnitPlacement) {
    this.unit = parseServiceUnit(fs.readFileSync(placement.unitFile, 'utf8'));
  }

  /** A path of the unit, on the machine. */
  onMachine(p: string): string {
    return path.join(this.placement.machineRoot, p);
  }

  /** The main process id while it runs. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The environment the service gets: the base, then each EnvironmentFile in order. */
  environment(): Record<string, string> {
    const env: Record<string, string> = { ...BASE_ENV };
    for (const { file, optional } of this.unit.environmentFiles) {
      const onMachine = this.onMachine(file);
      if (!fs.existsSync(onMachine)) {
        if (optional) continue;
        throw new Error(`${this.placement.name}: EnvironmentFile ${file} (${onMachine}) does not exist`);
      }
      Object.assign(env, parseEnvironmentFile(fs.readFileSync(onMachine, 'utf8')));
    }
    return env;
  }

  /** `systemctl start`: state directories, then ExecStart in the machine's namespace. */
  start(): void {
    if (this.running) throw new Error(`${this.placement.name} is already running (pid ${this.child?.pid})`);
    this.stopping = false;
    for (const dir of this.unit.stateDirectories) fs.mkdirSync(this.onMachine(path.join('/var/lib', dir)), { recursive: true, mode: 0o755 });
    const [command, ...args] = this.unit.execStart;
    const env = this.environment();
    fs.appendFileSync(this.placement.logFile, `\n===== ${this.placement.name}: start at ${new Date().toISOString()}\n`);
    const fd = fs.openSync(this.placement.logFile, 'a');
    try {
      // `ip netns exec` execs the command in place, and the launcher execs node: the pid is the app's.
      const child = spawn('ip', ['netns', 'exec', this.placement.netns, this.onMachine(command as string), ...args], {
        cwd: '/',
        env,
        stdio: ['ignore', fd, fd],
      });
      this.child = child;
      this.exit = new Promise((resolve) => {
        child.once('exit', (code, sig) => {
          fs.appendFileSync(this.placement.logFile, `===== ${this.placement.name}: exited code=${code} signal=${sig}\n`);
          resolve({ code, signal: sig });
          this.afterExit(code, sig);
        });
        child.once('error', (err) => {
          fs.appendFileSync(this.placement.logFile, `===== ${this.placement.name}: spawn error ${err.message}\n`);
          resolve({ code: null, signal: null });
        });
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Restart=on-failure: a non-zero exit or an unclean signal, unless stopped or the status is excluded. */
  private afterExit(code: number | null, sig: NodeJS.Signals | null): void {
    if (this.stopping || this.unit.restart === 'no') return;
    const clean = (code === 0 && sig === null) || (sig !== null && ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE'].includes(sig));
    if (this.unit.restart === 'on-failure' && clean) return;
    if (code !== null && this.unit.restartPreventExitStatus.includes(code)) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping || this.running) return;
      this.failureRestarts += 1;
      this.start();
    }, this.unit.restartMs);
  }

  /** Resolves when the current run has ended. */
  exited(): Promise<UnitExit> {
    return this.exit;
  }

  /**
   * `systemctl stop`: KillSignal to the main process, SIGKILL after TimeoutStopSec. Other processes
   * are not hunted down here: with KillMode=process that is the point (the agent's instances stay),
   * and the router's workers leave with their primary.
   */
  async stop(): Promise<UnitExit & { stopMs: number }> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const started = Date.now();
    const pid = this.pid;
    if (pid === undefined) return { code: null, signal: null, stopMs: 0 };
    signal(pid, this.unit.killSignal);
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), this.unit.timeoutStopMs).unref());
    if ((await Promise.race([this.exit, timeout])) === 'timeout' && isAlive(pid)) {
      fs.appendFileSync(
        this.placement.logFile,
        `===== ${this.placement.name}: still running ${this.unit.timeoutStopMs} ms after ${this.unit.killSignal}; SIGKILL\n`,
      );
      signal(pid, 'SIGKILL');
    }
    return { ...(await this.exit), stopMs: Date.now() - started };
  }

  /** The last `lines` lines of the log. */
  tail(lines = 40): string {
    try {
      return fs.readFileSync(this.placement.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '(no log yet)';
      throw err;
    }
  }
}
