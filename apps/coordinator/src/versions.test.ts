/**
 * The versions catalog from what agents report: a real coordinator, fake agents on real streams
 * announcing their PostgreSQL majors, and the operator API over gRPC and REST.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
const agents: FakeAgent[] = [];

const full = (major: string) => ({
  major,
  serverVersion: `${major}.14`,
  binDir: `/usr/lib/postgresql/${major}/bin`,
  pgBasebackup: true,
  pgRewind: true,
  pgbackrest: true,
});
const bare = (major: string) => ({
  major,
  serverVersion: `${major}.4`,
  binDir: `/var/lib/pgs/postgres/${major}/bin`,
  pgBasebackup: false,
  pgRewind: false,
  pgbackrest: false,
});

async function agent(hostId: string, address: string, postgresMajors: ReturnType<typeof full>[]): Promise<FakeAgent> {
  const a = new FakeAgent({ hostId, address, coordinator: h.coordinator.grpcAddress, autoRealize: true, postgresMajors, pgbackrestVersion: '2.45' });
  agents.push(a);
  await a.connect();
  return a;
}

async function refusal(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcError);
  return err as RpcError;
}

beforeAll(async () => {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-versions-repo-'));
  h = await startHarness(['--backup-repo', `posix:${repo}`]);
  await agent('v15', '127.0.0.41', [full('15')]);
  await agent('v18', '127.0.0.42', [full('15'), bare('18'), bare('16')]);
});
afterAll(async () => {
  for (const a of agents.splice(0)) await a.close();
  await h?.stop();
});

describe('versions catalog', () => {
  it('lists every major the hosts run, where, what each supports, and the newest fully supported as default', async () => {
    const { versions } = await h.operator.listVersions({});
    expect(versions.map((v) => [v.id, v.default, v.hostIds, v.replicasSupported, v.backupsSupported])).toEqual([
      ['18', false, ['v18'], false, false],
      ['16', false, ['v18'], false, false],
      ['15', true, ['v15', 'v18'], true, true],
    ]);
    expect(versions[0]?.serverVersions).toEqual(['18.4']);
    expect(versions[0]?.limitations).toMatch(
      /no replicas: no host that runs it has pg_basebackup 18; no backups: the hosts' pgBackRest 2.45 backs up PostgreSQL up to 15/,
    );
    const rest = await fetch(`http://${h.coordinator.httpAddress}/v1/types/postgres/versions`, { headers: { authorization: `Bearer ${h.adminToken}` } });
    const body = (await rest.json()) as { versions: { uuid: string; hosts: string[]; replicas_supported: boolean; default: boolean }[] };
    expect(body.versions.map((v) => [v.uuid, v.hosts, v.replicas_supported, v.default])).toEqual([
      ['18', ['v18'], false, false],
      ['16', ['v18'], false, false],
      ['15', ['v15', 'v18'], true, true],
    ]);
  });

  it('shows the majors each host reported', async () => {
    const { hosts } = await h.operator.listHosts({});
    expect(hosts.find((x) => x.id === 'v18')?.postgresMajors.map((m) => [m.major, m.pgBasebackup])).toEqual([
      ['15', true],
      ['18', false],
      ['16', false],
    ]);
  });

  it('places a tenant of a major only on a host that runs it, and pins the default major at create', async () => {
    await h.operator.createTenant({ id: 'eighteen', spec: { version: '18', nodes: 1, backup: { disabled: true } } });
    const placed = await eventually(async () => (await h.operator.getTenant({ id: 'eighteen' })).tenant?.placements[0]?.hostId, 5000, 'eighteen placed');
    expect(placed).toBe('v18');
    expect(agents[1]?.instances.get('eighteen')?.version).toBe('18');
    const plain = await h.operator.createTenant({ id: 'plain' });
    expect(plain.tenant?.spec?.version).toBe('15');
  });

  it('refuses replicas of a major no host can clone, and backups pgBackRest cannot take, saying why', async () => {
    const replicas = await refusal(h.operator.createTenant({ id: 'r18', spec: { version: '18', nodes: 2, backup: { disabled: true } } }));
    expect(replicas.code).toBe(Code.FAILED_PRECONDITION);
    expect(replicas.message).toMatch(/PostgreSQL 18 cannot have replicas here: .*pg_basebackup 18/);
    const backups = await refusal(h.operator.createTenant({ id: 'b18', spec: { version: '18', nodes: 1 } }));
    expect(backups.code).toBe(Code.FAILED_PRECONDITION);
    expect(backups.message).toMatch(/PostgreSQL 18 cannot be backed up here: .*pgBackRest 2.45 backs up PostgreSQL up to 15.*Disable the tenant's backups/);
    const unknown = await refusal(h.operator.createTenant({ id: 'u14', spec: { version: '14' } }));
    expect(unknown.code).toBe(Code.INVALID_ARGUMENT);
    expect(unknown.message).toMatch(/one of 18, 16, 15/);
  });

  it('refuses turning backups on later for such a major', async () => {
    await h.operator.createTenant({ id: 'later', spec: { version: '16', nodes: 1, backup: { disabled: true } } });
    const t = (await h.operator.getTenant({ id: 'later' })).tenant;
    const spec = { ...t?.spec, $typeName: undefined, backup: { disabled: false } };
    const err = await refusal(h.operator.updateTenant({ id: 'later', revision: t?.revision ?? 0n, spec }));
    expect(err.message).toMatch(/PostgreSQL 16/);
    expect(err.code).toBe(Code.FAILED_PRECONDITION);
    expect(err.message).toMatch(/PostgreSQL 16 cannot be backed up here/);
  });
});
