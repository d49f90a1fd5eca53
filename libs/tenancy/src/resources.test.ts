import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { DEFAULT_TENANT_SPEC, RESOURCE_BOUNDS, validateSpecChange, validateTenantSpec } from './resources.js';
import { aSpec } from './testing/builders.js';
import type { TenantSpec } from './resources.js';

/** The ValidationError validateTenantSpec throws for spec. */
function refusal(spec: TenantSpec, previous?: TenantSpec): ValidationError {
  try {
    if (previous === undefined) validateTenantSpec(spec);
    else validateSpecChange(previous, spec);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('validateTenantSpec', () => {
  it('accepts the default spec: 1 cpu, 1 GiB, 8 GiB disk, 1 node, access off', () => {
    expect(validateTenantSpec(DEFAULT_TENANT_SPEC)).toEqual(DEFAULT_TENANT_SPEC);
    expect(DEFAULT_TENANT_SPEC).toMatchObject({ resources: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192 }, nodes: 1, externalAccess: false });
  });

  it('accepts every bound exactly', () => {
    const b = RESOURCE_BOUNDS;
    for (const resources of [
      { cpuMillis: b.cpuMillis.min, memoryMib: b.memoryMib.min, diskMib: b.diskMib.min },
      { cpuMillis: b.cpuMillis.max, memoryMib: b.memoryMib.max, diskMib: b.diskMib.max },
    ]) {
      expect(() => validateTenantSpec(aSpec({ resources }))).not.toThrow();
    }
    expect(() => validateTenantSpec(aSpec({ nodes: 16, syncReplicas: 15 }))).not.toThrow();
    expect(() => validateTenantSpec(aSpec({ resources: { cpuMillis: 1500 } }))).not.toThrow();
  });

  it.each([
    [{ resources: { cpuMillis: 999 } }, 'spec.resources.cpu_millis'],
    [{ resources: { cpuMillis: 128_001 } }, 'spec.resources.cpu_millis'],
    [{ resources: { cpuMillis: 1000.5 } }, 'spec.resources.cpu_millis'],
    [{ resources: { memoryMib: 511 } }, 'spec.resources.memory_mib'],
    [{ resources: { memoryMib: 1_048_577 } }, 'spec.resources.memory_mib'],
    [{ resources: { diskMib: 8191 } }, 'spec.resources.disk_mib'],
    [{ resources: { diskMib: 1_048_577 } }, 'spec.resources.disk_mib'],
    [{ nodes: 0 }, 'spec.nodes'],
    [{ nodes: 17 }, 'spec.nodes'],
    [{ nodes: 3, syncReplicas: 3 }, 'spec.sync_replicas'],
    [{ nodes: 1, syncReplicas: 1 }, 'spec.sync_replicas'],
    [{ nodes: 16, syncReplicas: 16 }, 'spec.sync_replicas'],
    [{ syncReplicas: -1 }, 'spec.sync_replicas'],
    [{ version: 'fifteen point four!' }, 'spec.version'],
    [{ labels: { Bad: 'x' } }, 'spec.labels key'],
    [{ placement: { region: 'e u' } }, 'spec.placement.region'],
    [{ connectionLimit: -1 }, 'spec.connection_limit'],
    [{ description: 'x'.repeat(1025) }, 'spec.description'],
    [{ runState: 'PAUSED' }, 'spec.run_state'],
    [{ poolMode: 'STATEMENT' }, 'spec.pool_mode'],
    [{ idleSuspendSeconds: -1 }, 'spec.idle_suspend_seconds'],
    [{ idleSuspendSeconds: 2.5 }, 'spec.idle_suspend_seconds'],
    [{ idleSuspendSeconds: 2_592_001 }, 'spec.idle_suspend_seconds'],
    [{ externalAccess: 'yes' }, 'spec.external_access'],
  ])('refuses %j at field %s', (over, field) => {
    const err = refusal(aSpec(over as never));
    expect(err.field).toBe(field);
    expect(err.kind).toBe('user');
  });

  it('says the allowed range in human units too', () => {
    expect(refusal(aSpec({ resources: { memoryMib: 100 } })).allowed).toBe('a whole number from 512 (512Mi) to 1048576 (1Ti)');
    expect(refusal(aSpec({ resources: { cpuMillis: 200_000 } })).allowed).toBe('a whole number from 1000 (1 cpu) to 128000 (128 cpu)');
    expect(refusal(aSpec({ nodes: 2, syncReplicas: 2 })).allowed).toContain('from 0 to 1');
  });

  it('keeps a pool mode when given and leaves it unset otherwise (the default applies)', () => {
    expect(validateTenantSpec(aSpec({ poolMode: 'NONE' })).poolMode).toBe('NONE');
    expect('poolMode' in validateTenantSpec(aSpec())).toBe(false);
  });

  it('keeps an idle-suspend policy when on and drops it when off (0)', () => {
    expect(validateTenantSpec(aSpec({ idleSuspendSeconds: 300 })).idleSuspendSeconds).toBe(300);
    // A replicated tenant suspends only when asked: every member stops and wakes together.
    expect(validateTenantSpec(aSpec({ idleSuspendSeconds: 60, nodes: 2 })).idleSuspendSeconds).toBe(60);
    expect('idleSuspendSeconds' in validateTenantSpec(aSpec({ idleSuspendSeconds: 0 }))).toBe(false);
  });

  it('refuses a missing spec or resources', () => {
    expect(refusal(null as unknown as TenantSpec).field).toBe('spec');
    expect(refusal({ ...aSpec(), resources: null } as unknown as TenantSpec).field).toBe('spec.resources');
  });

  it('normalizes label order', () => {
    const spec = validateTenantSpec(aSpec({ labels: { b: '1', a: '2' } }));
    expect(Object.keys(spec.labels)).toEqual(['a', 'b']);
  });
});

describe('validateSpecChange', () => {
  const before = aSpec({ resources: { diskMib: 20_480 }, version: '15' });

  it('allows growing the disk and any other in-bounds change', () => {
    const after = aSpec({ resources: { diskMib: 40_960, memoryMib: 512 }, version: '15', nodes: 3, syncReplicas: 1 });
    expect(validateSpecChange(before, after).resources.diskMib).toBe(40_960);
    expect(() => validateSpecChange(before, aSpec({ resources: { diskMib: 20_480 }, version: '15' }))).not.toThrow();
  });

  it('refuses a disk shrink, naming the current size', () => {
    const err = refusal(aSpec({ resources: { diskMib: 10_240 }, version: '15' }), before);
    expect(err.code).toBe('DISK_SHRINK');
    expect(err.field).toBe('spec.resources.disk_mib');
    expect(err.allowed).toBe('20480 (20Gi) or more: a disk never shrinks');
  });

  it('refuses a version change but lets the catalog default be pinned', () => {
    expect(refusal(aSpec({ resources: { diskMib: 20_480 }, version: '16' }), before).code).toBe('VERSION_CHANGE');
    expect(() => validateSpecChange(aSpec({ version: '' }), aSpec({ version: '16' }))).not.toThrow();
  });

  it('still checks every bound', () => {
    expect(refusal(aSpec({ resources: { diskMib: 20_480 }, version: '15', nodes: 40 }), before).field).toBe('spec.nodes');
  });
});
