import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { binDirFor, expandBinDirPattern, findPostgresInstall } from './postgres-install.js';

// The extra majors of apps/host-agent/scripts/setup-postgres-versions.sh, where they are installed.
const VERSIONS_DIR = '/var/lib/pgs/postgres';
const haveVersions = fs.existsSync(path.join(VERSIONS_DIR, '18', 'bin', 'postgres'));

describe('findPostgresInstall', () => {
  it('finds the distribution major with its replication tools and pgBackRest support', () => {
    const install = findPostgresInstall(['/usr/lib/postgresql/*/bin'], undefined, '2.45');
    const m15 = install.majors.find((m) => m.major === '15');
    expect(m15).toMatchObject({ binDir: '/usr/lib/postgresql/15/bin', pgBasebackup: true, pgRewind: true, pgbackrest: true });
    expect(m15?.serverVersion).toMatch(/^15\.\d+$/);
    expect(install.defaultMajor).toBe('15');
    expect(install.pgbackrestVersion).toBe('2.45');
  });

  it('says pgBackRest cannot back a major up when it is absent', () => {
    const install = findPostgresInstall(['/usr/lib/postgresql/*/bin'], undefined, '');
    expect(install.majors.every((m) => !m.pgbackrest)).toBe(true);
  });

  it.skipIf(!haveVersions)("adds the versions directory's majors, server only, and keeps the fully equipped major as the default", () => {
    const install = findPostgresInstall(['/usr/lib/postgresql/*/bin', `${VERSIONS_DIR}/*/bin`], undefined, '2.45');
    expect(install.majors.map((m) => m.major)).toEqual(expect.arrayContaining(['18', '17', '16', '15']));
    expect(install.majors[0]?.major).toBe('18');
    expect(install.majors.find((m) => m.major === '18')).toMatchObject({
      binDir: `${VERSIONS_DIR}/18/bin`,
      pgBasebackup: false,
      pgRewind: false,
      pgbackrest: false,
    });
    expect(install.defaultMajor).toBe('15');
    expect(binDirFor(install, '17').binDir).toBe(`${VERSIONS_DIR}/17/bin`);
  });

  it('uses only the override bin dir when one is given', () => {
    const install = findPostgresInstall(['/nowhere/*/bin'], '/usr/lib/postgresql/15/bin', '2.45');
    expect(install.majors.map((m) => m.major)).toEqual(['15']);
    expect(() => binDirFor(install, '18')).toThrow(/PostgreSQL 18 is not installed on this host \(installed: 15\)/);
  });

  it('refuses to start without any server binaries, naming where it looked', () => {
    expect(() => findPostgresInstall(['/nowhere/*/bin'], undefined, '')).toThrow(/no PostgreSQL server binaries .* in \/nowhere\/\*\/bin/);
  });
});

describe('expandBinDirPattern', () => {
  it('expands * one directory level, skips hidden entries, passes plain paths through', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-bindirs-'));
    try {
      for (const d of ['16/bin', '18/bin', '.18.new/bin']) fs.mkdirSync(path.join(root, d), { recursive: true });
      expect(expandBinDirPattern(`${root}/*/bin`)).toEqual([`${root}/16/bin`, `${root}/18/bin`]);
      expect(expandBinDirPattern(`${root}/16/bin`)).toEqual([`${root}/16/bin`]);
      expect(expandBinDirPattern(`${root}/missing/*/bin`)).toEqual([]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
