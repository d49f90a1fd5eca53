/** Builders of records for tests. */
import { DEFAULT_TENANT_SPEC } from '@pgs/tenancy';
import type { InstanceHealthView } from '../live/health-cache.js';
import { newPlacement, type HostRecord, type PlacementRecord, type TenantRecord, type UpgradeRecord, type UserRecord } from '../domain/model.js';

/** A tenant record with defaults. */
export function aTenant(id: string, over: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id,
    spec: structuredClone({ ...DEFAULT_TENANT_SPEC, resources: { ...DEFAULT_TENANT_SPEC.resources }, labels: {}, placement: {} }),
    revision: 1,
    instanceRevision: 1,
    status: 'NEW',
    statusReason: '',
    deleting: false,
    createdAt: 1000,
    updatedAt: 1000,
    ...over,
  };
}

/** A host record with defaults (8 cores, 16 GiB, 200 GiB). */
export function aHost(id: string, over: Partial<HostRecord> = {}): HostRecord {
  return {
    id,
    address: '127.0.0.11',
    state: 'READY',
    cordoned: false,
    draining: false,
    capacity: { cpuMillis: 8000, memoryMib: 16384, diskMib: 204800 },
    labels: {},
    runtime: 'process',
    agentVersion: 'test',
    lastHeartbeatAt: 1000,
    registeredAt: 1000,
    stateChangedAt: 1000,
    generation: 0,
    ...over,
  };
}

/** A pending primary placement. */
export function aPlacement(tenantId: string, hostId: string, over: Partial<PlacementRecord> = {}): PlacementRecord {
  return { ...newPlacement({ tenantId, hostId, role: 'PRIMARY', address: '', now: 1000 }), ...over };
}

/** An owner user with a syntactically valid verifier. */
export function aUser(tenantId: string, name: string, over: Partial<UserRecord> = {}): UserRecord {
  return {
    tenantId,
    name,
    description: '',
    scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy',
    owner: false,
    status: 'NEW',
    statusReason: '',
    revision: 1,
    createdAt: 1000,
    ...over,
  };
}

/** An upgrade of `tenantId` from 15 on h1 to 18 on h2, just started. */
export function anUpgrade(tenantId: string, over: Partial<UpgradeRecord> = {}): UpgradeRecord {
  return {
    tenantId,
    phase: 'creating',
    fromHostId: 'h1',
    toHostId: 'h2',
    fromMajor: 15,
    toMajor: 18,
    startedAt: 1000,
    phaseStartedAt: 1000,
    copyDeadline: 61_000,
    switchAttempts: 0,
    keepUntil: 0,
    request: 'none',
    principal: 'operator:test',
    dumpMajor: 15,
    replicaIdentityFull: false,
    databases: ['app'],
    sealedPassword: 'sealed',
    verifier: 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy',
    sourcePrepared: false,
    subscribed: false,
    held: false,
    writersBlocked: false,
    other: { hostId: 'h2', major: 18, realizedRevision: 0, failedReason: '', state: '', address: '', port: 0 },
    lastReason: '',
    copyMs: 0,
    switchMs: 0,
    updatedAt: 1000,
    ...over,
  };
}

/** What a healthy primary's agent reports of it, with defaults. */
export function aHealthView(over: Partial<InstanceHealthView> = {}): InstanceHealthView {
  return {
    up: true,
    acceptingConnections: true,
    connections: 1,
    busyBackends: 0,
    databaseSizeBytes: 1,
    role: 'PRIMARY',
    lsn: '0/1000',
    lagBytes: 0,
    timeline: 1,
    checkedAt: 1,
    ...over,
  };
}
