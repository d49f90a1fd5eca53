import fs from 'node:fs';
import path from 'node:path';
import * as yaml from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseManifests } from './parse.js';
import { checkUnique, MANIFEST_KEYS } from './validate.js';

const parse = (text: string, file = 'tenants.yaml') => parseManifests(yaml, file, text);
const message = (text: string): string => {
  try {
    parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the manifest to be refused');
};

const ACME = `apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: acme }
spec:
  resources: { cpu: 1.5, memory: 2Gi, disk: 20Gi }
  nodes: 2
  syncReplicas: 1
  version: 15
  labels: { env: prod, tier: 1 }
  placement: { zone: a }
  access: enabled
  connectionLimit: 50
  description: the shop
  runState: stopped
  backup: { enabled: true, schedule: { full: 7d, diff: default }, retention: 2w, archiveTimeout: 60s }
  ownerPassword: { fromEnv: ACME_OWNER }
  users:
    - { name: app, password: { fromFile: secrets/app.pw }, description: the app }
  databases:
    - { name: orders, owner: app }
    - { name: reports }
`;

describe('manifest parsing', () => {
  it('reads every field into the domain units, and leaves what is not given unmanaged', () => {
    const [acme, bare] = parse(`${ACME}---\napiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: beta }\n`);
    expect(acme).toEqual({
      source: { file: 'tenants.yaml', document: 1 },
      name: 'acme',
      spec: {
        cpuMillis: 1500,
        memoryMib: 2048,
        diskMib: 20480,
        nodes: 2,
        syncReplicas: 1,
        version: '15',
        labels: { env: 'prod', tier: '1' },
        placement: { zone: 'a' },
        externalAccess: true,
        connectionLimit: 50,
        description: 'the shop',
        runState: 'STOPPED',
        backup: {
          disabled: false,
          fullIntervalSeconds: 604800,
          diffIntervalSeconds: 0,
          incrIntervalSeconds: 0,
          retentionSeconds: 1209600,
          archiveTimeoutSeconds: 60,
        },
      },
      ownerPassword: { fromEnv: 'ACME_OWNER' },
      users: [{ name: 'app', description: 'the app', password: { fromFile: 'secrets/app.pw' } }],
      databases: [
        { name: 'orders', owner: 'app', description: '' },
        { name: 'reports', owner: 'acme', description: '' },
      ],
    });
    expect(bare).toEqual({ source: { file: 'tenants.yaml', document: 2 }, name: 'beta', spec: {} });
  });

  it('reads JSON, one document or an array of them', () => {
    const one = JSON.stringify({ apiVersion: 'pgs.dev/v1', kind: 'Tenant', metadata: { name: 'a1' }, spec: { access: 'disabled' } });
    expect(parse(one, 'a.json').map((m) => [m.name, m.source.document])).toEqual([['a1', 1]]);
    const two = `[${one}, ${one.replace('a1', 'a2')}]`;
    expect(parse(two, 'b.json').map((m) => [m.name, m.source.document])).toEqual([
      ['a1', 1],
      ['a2', 2],
    ]);
  });

  it('names the file, the document, the tenant and the path of what it refuses', () => {
    const doc = (spec: string) => `---\napiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: beta }\nspec:\n${spec}\n`;
    expect(message(`${ACME}${doc('  resources: { memory: lots }')}`)).toMatch(
      /^tenants\.yaml, document 2 \(tenant beta\): spec\.resources\.memory: invalid memory/,
    );
    expect(message(doc('  users: [{ name: app, password: hunter22 }]'))).toMatch(
      /document 1 \(tenant beta\): spec\.users\[0\]\.password: a password never goes in a manifest/,
    );
    expect(message(doc('  replicas: 2'))).toMatch(/spec\.replicas: unknown field; allowed here: resources, nodes/);
    expect(message(doc('  access: on'))).toMatch(/spec\.access: expected enabled or disabled, got "on"/);
    expect(message(doc('  databases: [{ name: d1, owner: ghost }]\n  users: []'))).toMatch(/spec\.databases\[0\]\.owner: user ghost is not in spec\.users/);
    expect(message(doc('  backup: { retention: 3 days }'))).toMatch(/spec\.backup\.retention: invalid spec\.backup\.retention "3 days"/);
    expect(message(doc('  users: [{ name: beta, password: { fromEnv: X } }]'))).toMatch(/spec\.users\[0\]\.name: beta is the tenant's owner user/);
    expect(message('apiVersion: pgs.dev/v2\nkind: Tenant\nmetadata: { name: x }')).toMatch(/^tenants\.yaml, document 1: apiVersion: expected pgs\.dev\/v1/);
    expect(message('apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: Bad_Name }')).toMatch(/metadata\.name: invalid name/);
    expect(message('apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: x\n')).toMatch(/^tenants\.yaml, document 1: not valid YAML or JSON at line \d+/);
  });

  it('reads initSql as inline SQL or files, and names the path of a bad one', () => {
    const [m] = parse(`${ACME}  initSql:\n    - "create table t (x int)"\n    - { file: sql/a.sql, database: acme }\n`, 'a.yaml');
    expect(m!.initSql).toEqual([
      { sql: 'create table t (x int)', database: '' },
      { file: 'sql/a.sql', database: 'acme' },
    ]);
    expect(() => parse(`${ACME}  initSql:\n    - { sql: "x", file: y.sql }\n`, 'a.yaml')).toThrow(
      /a\.yaml, document 1 \(tenant acme\): spec\.initSql\[0\]: give exactly one of sql/,
    );
    expect(() => parse(`${ACME}  initSql:\n    - { file: y.sql, database: nope }\n`, 'a.yaml')).toThrow(
      /spec\.initSql\[0\]\.database: database nope is not in spec\.databases/,
    );
    expect(() => parse(`${ACME}  initSql:\n    - ""\n`, 'a.yaml')).toThrow(/spec\.initSql\[0\]: expected SQL/);
  });

  it('refuses two documents for one tenant, naming both', () => {
    const twice = parse(`${ACME}---\n${ACME}`, 'a.yaml');
    expect(() => checkUnique(twice)).toThrow(/a\.yaml, document 2 \(tenant acme\): metadata\.name: tenant acme is also in a\.yaml, document 1/);
  });

  it('knows exactly the keys the JSON Schema describes', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'manifest.schema.json'), 'utf8')) as SchemaNode;
    const spec = schema.properties!.spec!;
    const item = (node: SchemaNode) => node.items!;
    const keys = (node: SchemaNode) => Object.keys(node.properties ?? {}).sort();
    expect(keys(schema)).toEqual([...MANIFEST_KEYS.top].sort());
    expect(keys(schema.properties!.metadata!)).toEqual([...MANIFEST_KEYS.metadata].sort());
    expect(keys(spec)).toEqual([...MANIFEST_KEYS.spec].sort());
    expect(keys(spec.properties!.resources!)).toEqual([...MANIFEST_KEYS.resources].sort());
    expect(keys(spec.properties!.backup!)).toEqual([...MANIFEST_KEYS.backup].sort());
    expect(keys(spec.properties!.backup!.properties!.schedule!)).toEqual([...MANIFEST_KEYS.schedule].sort());
    expect(keys(item(spec.properties!.users!))).toEqual([...MANIFEST_KEYS.user].sort());
    expect(keys(item(spec.properties!.databases!))).toEqual([...MANIFEST_KEYS.database].sort());
    expect(keys(spec.properties!.ownerPassword!)).toEqual([...MANIFEST_KEYS.password].sort());
    expect(keys(item(spec.properties!.initSql!).oneOf![1]!)).toEqual([...MANIFEST_KEYS.initScript].sort());
  });
});

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
}
