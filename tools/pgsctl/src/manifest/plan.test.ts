import * as yaml from 'yaml';
import { describe, expect, it } from 'vitest';
import type { DatabaseView, TenantView, UserView } from '../views.js';
import { parseManifests } from './parse.js';
import { conflictingFields, planChanges, planTenant, tenantsToPrune, type CurrentTenant } from './plan.js';
import { renderPlans } from './render.js';

const manifest = (spec: string, name = 'acme') =>
  parseManifests(yaml, 'm.yaml', `apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: ${name} }\nspec:\n${spec}\n`)[0]!;

function tenant(over: Partial<TenantView['spec']> = {}, rest: Partial<TenantView> = {}): TenantView {
  return {
    id: 'acme',
    status: 'ACTIVE',
    statusReason: '',
    revision: 4,
    placements: [],
    createdAt: null,
    updatedAt: null,
    initSql: null,
    suspendedAt: null,
    spec: {
      resources: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192 },
      nodes: 1,
      syncReplicas: 0,
      version: '15',
      labels: { env: 'dev' },
      placement: {},
      externalAccess: false,
      connectionLimit: 0,
      description: '',
      runState: 'RUNNING',
      poolMode: 'SESSION',
      idleSuspendSeconds: 0,
      backup: null,
      ...over,
    },
    ...rest,
  };
}
const user = (name: string, owner = false): UserView => ({
  tenantId: 'acme',
  name,
  owner,
  status: 'READY',
  statusReason: '',
  description: '',
  createdAt: null,
});
const db = (name: string, owner: string): DatabaseView => ({
  tenantId: 'acme',
  name,
  owner,
  status: 'READY',
  statusReason: '',
  description: '',
  createdAt: null,
});
const current = (t: TenantView, users: UserView[] = [user('acme', true)], databases: DatabaseView[] = [db('acme', 'acme')]): CurrentTenant => ({
  tenant: t,
  users,
  databases,
});

describe('manifest plans', () => {
  it('sends init scripts only with a create, and never shows them as a change of an existing tenant', () => {
    const m = manifest(
      '  initSql:\n    - file: sql/001.sql\n    - "create table t (x int)"\n    - { sql: "select 1", database: orders }\n  databases: [{ name: orders }]',
    );
    const created = planTenant(m, undefined, { prune: false });
    expect(created.initScripts).toEqual(['sql/001.sql', 'inline #2', 'inline #3 in database orders']);
    expect(renderPlans([created], [])).toContain('+ init script sql/001.sql (runs once, after the users and databases)');
    const existing = planTenant(m, current(tenant(), [user('acme', true)], [db('acme', 'acme'), db('orders', 'acme')]), { prune: false });
    expect(existing.initScripts).toEqual([]);
    expect(planChanges(existing)).toBe(false);
  });

  it("creates a missing tenant with the defaults under the manifest's fields, its users and databases", () => {
    const m = manifest('  resources: { memory: 2Gi }\n  users: [{ name: app, password: { fromEnv: P } }]\n  databases: [{ name: orders, owner: app }]');
    const plan = planTenant(m, undefined, { prune: false });
    expect(plan.action).toBe('create');
    expect(plan.spec.resources).toEqual({ cpuMillis: 1000, memoryMib: 2048, diskMib: 8192 });
    expect(plan.changes).toEqual([{ path: 'spec.resources.memory', from: '-', to: '2Gi' }]);
    expect(plan.createUsers.map((u) => u.name)).toEqual(['app']);
    expect(plan.createDatabases.map((d) => d.name)).toEqual(['orders']);
  });

  it('changes nothing when the tenant is as the manifest says, whatever the fields it leaves out hold', () => {
    const m = manifest('  labels: { env: dev }\n  access: disabled\n  users: [{ name: app, password: { fromEnv: P } }]');
    const plan = planTenant(m, current(tenant({ resources: { cpuMillis: 4000, memoryMib: 9999, diskMib: 99999 } }), [user('acme', true), user('app')]), {
      prune: true,
    });
    expect(plan.action).toBe('unchanged');
    expect(planChanges(plan)).toBe(false);
    expect(renderPlans([plan], [])).toMatch(/tenant acme: unchanged \(m\.yaml, document 1\)\nno changes: everything is as the manifests say\n$/);
  });

  it('names each changed field with the value it has and the value it gets', () => {
    const m = manifest('  resources: { memory: 2Gi }\n  labels: { env: prod, team: db }\n  runState: stopped\n  backup: { retention: 14d }');
    const plan = planTenant(m, current(tenant()), { prune: false });
    expect(plan.action).toBe('update');
    expect(plan.revision).toBe(4);
    expect(plan.changes).toEqual([
      { path: 'spec.resources.memory', from: '1Gi', to: '2Gi' },
      { path: 'spec.runState', from: 'running', to: 'stopped' },
      { path: 'spec.labels.env', from: 'dev', to: 'prod' },
      { path: 'spec.backup.retention', from: 'default', to: '2w' },
      { path: 'spec.labels.team', from: '-', to: 'db' },
    ]);
    expect(renderPlans([plan], [])).toContain('  ~ spec.resources.memory: 1Gi -> 2Gi\n');
  });

  it('sets and turns off the idle-suspend policy, refusing a malformed one', () => {
    const on = planTenant(manifest('  idleSuspend: 5m'), current(tenant()), { prune: false });
    expect(on.changes).toEqual([{ path: 'spec.idleSuspend', from: 'off', to: '5m' }]);
    const off = planTenant(manifest('  idleSuspend: "off"'), current(tenant({ idleSuspendSeconds: 300 })), { prune: false });
    expect(off.changes).toEqual([{ path: 'spec.idleSuspend', from: '5m', to: 'off' }]);
    expect(() => manifest('  idleSuspend: soon')).toThrow(/spec.idleSuspend/);
  });

  it('refuses what the rules refuse, naming the manifest (a disk never shrinks)', () => {
    const m = manifest('  resources: { disk: 10Gi }');
    expect(() => planTenant(m, current(tenant({ resources: { cpuMillis: 1000, memoryMib: 1024, diskMib: 20480 } })), { prune: false })).toThrow(
      /^m\.yaml, document 1 \(tenant acme\): spec: invalid spec\.resources\.disk_mib.*never shrinks/,
    );
  });

  it('drops users and databases the manifest does not list only under --prune, never the owner', () => {
    const m = manifest('  users: []\n  databases: [{ name: acme }]');
    const live = current(tenant(), [user('acme', true), user('old')], [db('acme', 'acme'), db('scratch', 'old')]);
    const kept = planTenant(m, live, { prune: false });
    expect([kept.deleteUsers, kept.deleteDatabases, planChanges(kept)]).toEqual([[], [], false]);
    const pruned = planTenant(m, live, { prune: true });
    expect([pruned.deleteUsers, pruned.deleteDatabases]).toEqual([['old'], ['scratch']]);
    expect(renderPlans([pruned], [])).toContain('  - user old (--prune)\n  - database scratch (--prune)\n');
  });

  it("reports what pgs cannot change as a problem (a database's owner)", () => {
    const m = manifest('  databases: [{ name: orders, owner: app }]');
    const plan = planTenant(m, current(tenant(), [user('acme', true), user('app')], [db('orders', 'acme')]), { prune: false });
    expect(plan.problems).toEqual([expect.stringMatching(/^database orders is owned by acme, the manifest says app: pgs cannot change a database's owner/)]);
  });

  it('tells a concurrent change of a managed field from one of a field left alone', () => {
    const m = manifest('  resources: { memory: 2Gi }');
    const before = planTenant(m, current(tenant()), { prune: false });
    const otherField = planTenant(m, current(tenant({ description: 'edited' }, { revision: 5 })), { prune: false });
    expect(conflictingFields(before, otherField)).toEqual([]);
    const sameField = planTenant(m, current(tenant({ resources: { cpuMillis: 1000, memoryMib: 4096, diskMib: 8192 } }, { revision: 5 })), { prune: false });
    expect(conflictingFields(before, sameField)).toEqual(['spec.resources.memory is now 4Gi (was 1Gi when read; the manifest asks 2Gi)']);
    const alreadyDone = planTenant(m, current(tenant({ resources: { cpuMillis: 1000, memoryMib: 2048, diskMib: 8192 } }, { revision: 5 })), { prune: false });
    expect(conflictingFields(before, alreadyDone)).toEqual([]);
  });

  it("prunes only tenants with the selector's labels that no manifest names", () => {
    const tenants = [tenant({ labels: { managed: 'git' } }), tenant({ labels: { managed: 'git' } }, { id: 'gone' }), tenant({ labels: {} }, { id: 'manual' })];
    expect(tenantsToPrune([manifest('  access: disabled')], tenants, { managed: 'git' })).toEqual(['gone']);
  });
});
