// The shipped units and option files agree with the apps: every variable an example env file names
// is one the command's --help lists, and each unit gives its app longer to stop than the app gives
// itself. Reads deploy/ and runs the released launchers; imports nothing of the apps.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RELEASE_VERSION } from './release.js';
import { REPO_ROOT } from './repo.js';
import { parseEnvironmentFile, parseServiceUnit, parseTimespan } from './unit-runner.js';

const DEPLOY = path.join(REPO_ROOT, 'deploy');
const RELEASE_BIN = path.join(REPO_ROOT, 'dist', `pgs-${RELEASE_VERSION}-${process.platform}-${process.arch}`, 'bin');
const UNITS = [
  { component: 'coordinator', command: 'pgs-coordinator', appStopDeadlineMs: 15_000 },
  { component: 'agent', command: 'pgs-agent', appStopDeadlineMs: 15_000 },
  // The router's deadline is its default --shutdown-timeout (30 s) plus 5 s to close the rest.
  { component: 'router', command: 'pgs-router', appStopDeadlineMs: 35_000 },
] as const;

const unitOf = (command: string): ReturnType<typeof parseServiceUnit> =>
  parseServiceUnit(fs.readFileSync(path.join(DEPLOY, 'systemd', `${command}.service`), 'utf8'));

describe('deploy/systemd units', () => {
  it.each(UNITS)(
    "$command: ExecStart, env file, restart policy and a stop timeout above the app's own deadline",
    ({ component, command, appStopDeadlineMs }) => {
      const unit = unitOf(command);
      expect(unit.execStart).toEqual([`/opt/pgs/bin/${command}`]);
      expect(unit.environmentFiles[0]).toEqual({ file: `/etc/pgs/${component}.env`, optional: false });
      expect(unit.restart).toBe('on-failure');
      expect(unit.restartPreventExitStatus).toEqual([2]);
      expect(unit.killSignal).toBe('SIGTERM');
      expect(unit.timeoutStopMs).toBeGreaterThan(appStopDeadlineMs);
      expect(unit.stateDirectories).toEqual([`pgs/${component}`]);
    },
  );

  it('the agent leaves its instances running when it stops; the router signals only its primary', () => {
    expect(unitOf('pgs-agent').killMode).toBe('process');
    expect(unitOf('pgs-router').killMode).toBe('mixed');
    expect(unitOf('pgs-agent').environmentFiles[1]).toEqual({ file: '/etc/pgs/agent.join.env', optional: true });
    expect(unitOf('pgs-router').environmentFiles[1]).toEqual({ file: '/etc/pgs/router.join.env', optional: true });
  });

  it('parses systemd time spans and environment files', () => {
    expect([parseTimespan('20s'), parseTimespan('500ms'), parseTimespan('2min'), parseTimespan('3')]).toEqual([20_000, 500, 120_000, 3000]);
    expect(parseEnvironmentFile('# c\n; c\nA=1\nB = "two words"\n\nC=\'x=y\'\n')).toEqual({ A: '1', B: 'two words', C: 'x=y' });
    expect(() => parseEnvironmentFile('not a pair')).toThrow(/KEY=value/);
  });
});

describe.skipIf(!fs.existsSync(RELEASE_BIN))('deploy/env examples', () => {
  it.each(UNITS)('$component.env names only variables $command --help lists', ({ component, command }) => {
    const help = execFileSync(path.join(RELEASE_BIN, command), ['--help'], { encoding: 'utf8' });
    const text = fs.readFileSync(path.join(DEPLOY, 'env', `${component}.env`), 'utf8');
    // Commented-out settings count too: an operator uncomments them as they are.
    const names = [...text.matchAll(/^#?(PGS_[A-Z0-9_]+)=/gm)].map((m) => m[1] as string);
    expect(names.length).toBeGreaterThan(3);
    expect(names.filter((n) => !help.includes(` ${n} `))).toEqual([]);
    expect(Object.keys(parseEnvironmentFile(text)).length).toBeGreaterThan(2);
  });
});
