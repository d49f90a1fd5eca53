import { DEFAULT_TENANT_SPEC, ValidationError } from '@pgs/tenancy';
import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { applyPairs, parsePoolMode, specForCreate, specForUpdate, specToProto } from './tenant-spec.js';

describe('tenant spec flags', () => {
  it('applies units and counts on top of the defaults', () => {
    const spec = specForCreate(DEFAULT_TENANT_SPEC, {
      cpu: '1.5',
      memory: '2Gi',
      disk: '20Gi',
      replicas: '2',
      syncReplicas: '1',
      label: ['env=prod'],
      access: 'enabled',
    });
    expect(spec).toMatchObject({
      resources: { cpuMillis: 1500, memoryMib: 2048, diskMib: 20480 },
      nodes: 3,
      syncReplicas: 1,
      labels: { env: 'prod' },
      externalAccess: true,
    });
  });

  it("refuses what the rules refuse, with the rule's own message", () => {
    expect(() => specForCreate(DEFAULT_TENANT_SPEC, { memory: '100Mi' })).toThrow(/invalid spec\.resources\.memory_mib: got 100/);
    expect(() => specForCreate(DEFAULT_TENANT_SPEC, { syncReplicas: '1' })).toThrow(ValidationError);
    expect(() => specForCreate(DEFAULT_TENANT_SPEC, { replicas: 'two' })).toThrow(UsageError);
  });

  it('updates only the flags given and never shrinks the disk', () => {
    const current = specForCreate(DEFAULT_TENANT_SPEC, { disk: '20Gi', label: ['a=1', 'b=2'] });
    const next = specForUpdate(current, { memory: '4Gi', label: ['b-', 'c=3'] });
    expect(next).toMatchObject({ resources: { memoryMib: 4096, diskMib: 20480 }, labels: { a: '1', c: '3' } });
    expect(() => specForUpdate(current, { disk: '10Gi' })).toThrow(/disk/);
  });

  it('parses key=value pairs and rejects a pair without a key', () => {
    expect(applyPairs({ x: '1' }, ['y=2', 'x-'], '--label')).toEqual({ y: '2' });
    expect(() => applyPairs({}, ['=v'], '--label')).toThrow(/expected key=value/);
  });
});

describe('--pool-mode', () => {
  it('parses the three modes in any case and refuses others with what to use', () => {
    expect(parsePoolMode('session')).toBe('SESSION');
    expect(parsePoolMode('Transaction')).toBe('TRANSACTION');
    expect(parsePoolMode('none')).toBe('NONE');
    expect(() => parsePoolMode('statement')).toThrow(/use none, session or transaction/);
  });

  it('changes the mode on update and keeps it when the flag is absent', () => {
    const current = { ...DEFAULT_TENANT_SPEC, poolMode: 'TRANSACTION' as const };
    expect(specForUpdate(current, { description: 'x' }).poolMode).toBe('TRANSACTION');
    expect(specForUpdate(current, { poolMode: 'none' }).poolMode).toBe('NONE');
    expect(specToProto(specForUpdate(current, { poolMode: 'none' }), null).poolMode).toBe(1);
  });
});

describe('--idle-suspend', () => {
  it('sets a span in seconds, turns off with off or 0, keeps the policy when absent', () => {
    expect(specForCreate(DEFAULT_TENANT_SPEC, { idleSuspend: '5m' }).idleSuspendSeconds).toBe(300);
    const current = { ...DEFAULT_TENANT_SPEC, idleSuspendSeconds: 30 };
    expect(specForUpdate(current, { description: 'x' }).idleSuspendSeconds).toBe(30);
    expect('idleSuspendSeconds' in specForUpdate(current, { idleSuspend: 'off' })).toBe(false);
    expect('idleSuspendSeconds' in specForUpdate(current, { idleSuspend: '0' })).toBe(false);
    expect(specToProto(specForUpdate(current, {}), null).idleSuspendSeconds).toBe(30);
    expect(() => specForCreate(DEFAULT_TENANT_SPEC, { idleSuspend: 'soon' })).toThrow(/invalid --idle-suspend "soon"/);
  });
});
