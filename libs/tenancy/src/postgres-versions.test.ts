import { describe, expect, it } from 'vitest';
import { placeTenants } from './placement.js';
import { buildVersionCatalog, pgbackrestMaxMajor, versionProblem, type HostMajor, type HostVersions } from './postgres-versions.js';
import { aHost, aRequest } from './testing/builders.js';

const full = (major: string): HostMajor => ({ major, serverVersion: `${major}.1`, pgBasebackup: true, pgRewind: true, pgbackrest: true });
const bare = (major: string): HostMajor => ({ major, serverVersion: `${major}.4`, pgBasebackup: false, pgRewind: false, pgbackrest: false });
const host = (hostId: string, majors: HostMajor[] | undefined, pgbackrestVersion = '2.45'): HostVersions => ({ hostId, majors, pgbackrestVersion });
const conf = [{ id: '15', image: 'img:15', deprecated: false }];

describe('pgbackrestMaxMajor', () => {
  it('knows which majors a release backs up', () => {
    expect(pgbackrestMaxMajor('2.45')).toBe(15);
    expect(pgbackrestMaxMajor('2.47')).toBe(16);
    expect(pgbackrestMaxMajor('2.54.2')).toBe(17);
    expect(pgbackrestMaxMajor('3.0')).toBe(17);
    expect(pgbackrestMaxMajor('2.10')).toBeUndefined();
    expect(pgbackrestMaxMajor('')).toBeUndefined();
  });
});

describe('buildVersionCatalog', () => {
  it('lists configured and reported majors newest first, with where they run and what they support', () => {
    const hosts = [host('h1', [full('15'), bare('18')]), host('h2', [full('15'), bare('16'), bare('18')])];
    const catalog = buildVersionCatalog(conf, hosts);
    expect(catalog.map((v) => v.id)).toEqual(['18', '16', '15']);
    const v18 = catalog[0];
    expect(v18).toMatchObject({
      id: '18',
      major: 18,
      image: '',
      hostIds: ['h1', 'h2'],
      replicas: false,
      backups: false,
      default: false,
      serverVersions: ['18.4'],
    });
    expect(v18?.limitations).toMatch(
      /no replicas: no host that runs it has pg_basebackup 18; no backups: the hosts' pgBackRest 2.45 backs up PostgreSQL up to 15/,
    );
    expect(catalog[2]).toMatchObject({ id: '15', image: 'img:15', hostIds: ['h1', 'h2'], replicas: true, backups: true, default: true, limitations: '' });
  });

  it('defaults to the newest fully supported major', () => {
    const catalog = buildVersionCatalog(conf, [host('h1', [full('15'), full('17'), bare('18')])]);
    expect(catalog.find((v) => v.default)?.id).toBe('17');
  });

  it('treats hosts that report nothing as running the configured majors fully (older agents)', () => {
    const catalog = buildVersionCatalog(conf, [host('h1', undefined, '')]);
    expect(catalog).toEqual([expect.objectContaining({ id: '15', hostIds: ['h1'], replicas: true, backups: true, default: true })]);
  });

  it('keeps a configured major no host runs, saying so, and falls back to the first configured default', () => {
    const catalog = buildVersionCatalog(conf, []);
    expect(catalog).toEqual([expect.objectContaining({ id: '15', hostIds: [], replicas: false, default: true, limitations: 'no host runs it now' })]);
  });

  it('names a missing pgBackRest', () => {
    const catalog = buildVersionCatalog([], [host('h1', [bare('16')], '')]);
    expect(catalog[0]?.limitations).toMatch(/pgBackRest is not installed/);
  });
});

describe('versionProblem', () => {
  const catalog = buildVersionCatalog(conf, [host('h1', [full('15'), bare('18')])]);
  const v = (id: string) => catalog.find((e) => e.id === id) ?? buildVersionCatalog([{ id, image: '', deprecated: false }], [])[0]!;

  it('accepts what the major can serve', () => {
    expect(versionProblem(v('15'), { version: '15', nodes: 3, backups: true })).toBeUndefined();
    expect(versionProblem(v('18'), { version: '18', nodes: 1, backups: false })).toBeUndefined();
  });

  it('refuses replicas without pg_basebackup of the major, saying why', () => {
    expect(versionProblem(v('18'), { version: '18', nodes: 2, backups: false })).toMatch(
      /PostgreSQL 18 cannot have replicas here: .*pg_basebackup 18.*Use nodes 1/,
    );
  });

  it('refuses backups beyond what pgBackRest supports, saying what to do', () => {
    expect(versionProblem(v('18'), { version: '18', nodes: 1, backups: true })).toMatch(
      /cannot be backed up here: .*pgBackRest 2.45 backs up PostgreSQL up to 15.*Disable the tenant's backups/,
    );
  });

  it('lets a configured major no host runs yet wait for placement', () => {
    expect(versionProblem(v('14'), { version: '14', nodes: 2, backups: true })).toBeUndefined();
  });
});

describe('placement by version', () => {
  const hosts = [
    aHost('a', { postgresMajors: ['15'], replicaMajors: ['15'] }),
    aHost('b', { postgresMajors: ['15', '18'], replicaMajors: ['15'] }),
    aHost('c', { postgresMajors: ['15', '18'], replicaMajors: ['15', '18'] }),
    aHost('old'),
  ];

  it('places a tenant only on hosts that run its major (a host that reports nothing runs anything)', () => {
    const { placed } = placeTenants(hosts.slice(0, 3), [aRequest('t', { version: '18' })]);
    expect(placed[0]?.hostIds).toEqual(['b']);
    expect(placeTenants([hosts[3]!], [aRequest('t', { version: '18' })]).placed[0]?.hostIds).toEqual(['old']);
  });

  it('places replicas only where pg_basebackup of the major is', () => {
    const { placed, unplaced } = placeTenants(hosts.slice(0, 3), [aRequest('t', { version: '18', nodes: 2 })]);
    expect(placed).toEqual([]);
    expect(unplaced[0]?.reason).toMatch(/instance 2 of 2: .*2 without PostgreSQL 18 and its pg_basebackup/);
    expect(placeTenants(hosts.slice(0, 3), [aRequest('t', { version: '18', replicated: true })]).placed[0]?.hostIds).toEqual(['c']);
  });

  it('explains a major no host runs', () => {
    const { unplaced } = placeTenants(hosts.slice(0, 1), [aRequest('t', { version: '17' })]);
    expect(unplaced[0]?.reason).toMatch(/1 without PostgreSQL 17/);
  });
});
