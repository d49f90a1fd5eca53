/**
 * Tenant spec flags (--cpu 1.5 --memory 2Gi --replicas 1 --label k=v ...) -> a validated domain
 * spec -> the proto TenantSpec. Every unit and bound comes from @pgs/tenancy, so pgsctl refuses
 * bad input before calling, with the message the coordinator would give.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { PoolMode, RunState, type TenantSpecSchema } from '@pgs/proto';
import { parseCpu, parseSize, validateSpecChange, validateTenantSpec, type PoolMode as DomainPoolMode, type TenantSpec } from '@pgs/tenancy';
import { backupPolicyToProto } from './backup-policy.js';
import { UsageError } from './errors.js';
import { parseIdleSuspend } from './spans.js';
import type { BackupPolicyView, SpecView } from './views.js';

/** The spec flags shared by `tenant create` and `tenant update` (all optional: unset keeps the base). */
export interface SpecFlags {
  cpu?: string;
  memory?: string;
  disk?: string;
  replicas?: string;
  syncReplicas?: string;
  version?: string;
  label?: string[];
  placement?: string[];
  access?: string;
  connectionLimit?: string;
  description?: string;
  poolMode?: string;
  idleSuspend?: string;
}

/** Commander collector for repeatable options (--label a=b --label c=d). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses k=v pairs; `k-` (kubectl style) removes k from base. */
export function applyPairs(base: Record<string, string>, pairs: readonly string[] | undefined, flag: string): Record<string, string> {
  const out = { ...base };
  for (const pair of pairs ?? []) {
    if (pair.endsWith('-') && !pair.includes('=')) {
      delete out[pair.slice(0, -1)];
      continue;
    }
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid ${flag} ${JSON.stringify(pair)}: expected key=value (or key- to remove a key)`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Parses a whole number flag. */
export function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: expected a whole number`);
  return Number(text);
}

/** Parses enabled|disabled (also on/off, true/false). */
export function parseAccess(text: string): boolean {
  const t = text.toLowerCase();
  if (['enabled', 'enable', 'on', 'true', 'yes'].includes(t)) return true;
  if (['disabled', 'disable', 'off', 'false', 'no'].includes(t)) return false;
  throw new UsageError(`invalid --access ${JSON.stringify(text)}: use enabled or disabled`);
}

/** Parses none|session|transaction. */
export function parsePoolMode(text: string): DomainPoolMode {
  const t = text.trim().toUpperCase();
  if (t === 'NONE' || t === 'SESSION' || t === 'TRANSACTION') return t;
  throw new UsageError(`invalid --pool-mode ${JSON.stringify(text)}: use none, session or transaction`);
}

/** A SpecView (as read from the coordinator) -> the domain spec. */
export function specFromView(view: SpecView): TenantSpec {
  return {
    resources: { ...view.resources },
    nodes: view.nodes,
    syncReplicas: view.syncReplicas,
    version: view.version,
    labels: { ...view.labels },
    placement: { ...view.placement },
    externalAccess: view.externalAccess,
    connectionLimit: view.connectionLimit,
    description: view.description,
    runState: view.runState === 'STOPPED' ? 'STOPPED' : 'RUNNING',
    poolMode: parsePoolMode(view.poolMode),
    ...(view.idleSuspendSeconds > 0 ? { idleSuspendSeconds: view.idleSuspendSeconds } : {}),
  };
}

/** Applies the flags to base. --replicas counts standbys besides the primary, so nodes = replicas + 1. */
export function applySpecFlags(base: TenantSpec, flags: SpecFlags): TenantSpec {
  return {
    resources: {
      cpuMillis: flags.cpu === undefined ? base.resources.cpuMillis : parseCpu(flags.cpu, '--cpu'),
      memoryMib: flags.memory === undefined ? base.resources.memoryMib : parseSize(flags.memory, '--memory'),
      diskMib: flags.disk === undefined ? base.resources.diskMib : parseSize(flags.disk, '--disk'),
    },
    nodes: flags.replicas === undefined ? base.nodes : parseCount(flags.replicas, '--replicas') + 1,
    syncReplicas: flags.syncReplicas === undefined ? base.syncReplicas : parseCount(flags.syncReplicas, '--sync-replicas'),
    version: flags.version ?? base.version,
    labels: applyPairs(base.labels, flags.label, '--label'),
    placement: applyPairs(base.placement, flags.placement, '--placement'),
    externalAccess: flags.access === undefined ? base.externalAccess : parseAccess(flags.access),
    connectionLimit: flags.connectionLimit === undefined ? base.connectionLimit : parseCount(flags.connectionLimit, '--connection-limit'),
    description: flags.description ?? base.description,
    runState: base.runState,
    ...(flags.poolMode !== undefined ? { poolMode: parsePoolMode(flags.poolMode) } : base.poolMode !== undefined ? { poolMode: base.poolMode } : {}),
    ...idleSuspendOf(flags.idleSuspend === undefined ? (base.idleSuspendSeconds ?? 0) : parseIdleSuspend(flags.idleSuspend, '--idle-suspend')),
  };
}

/** The spec's idle-suspend field: absent when off. */
export function idleSuspendOf(seconds: number): { idleSuspendSeconds?: number } {
  return seconds > 0 ? { idleSuspendSeconds: seconds } : {};
}

/** A new tenant's spec: defaults + flags, validated. */
export function specForCreate(base: TenantSpec, flags: SpecFlags): TenantSpec {
  return validateTenantSpec(applySpecFlags(base, flags));
}

/** An updated spec: current + flags, validated as a change (disk never shrinks, ...). */
export function specForUpdate(current: TenantSpec, flags: SpecFlags): TenantSpec {
  return validateSpecChange(current, applySpecFlags(current, flags));
}

/** Domain spec and backup policy (null = the fleet defaults) -> proto TenantSpec init. */
export function specToProto(spec: TenantSpec, backup: BackupPolicyView | null): MessageInitShape<typeof TenantSpecSchema> {
  return {
    resources: { ...spec.resources },
    nodes: spec.nodes,
    syncReplicas: spec.syncReplicas,
    version: spec.version,
    labels: { ...spec.labels },
    placement: { ...spec.placement },
    externalAccess: spec.externalAccess,
    connectionLimit: spec.connectionLimit,
    description: spec.description,
    runState: spec.runState === 'STOPPED' ? RunState.STOPPED : RunState.RUNNING,
    poolMode: spec.poolMode === undefined ? PoolMode.UNSPECIFIED : PoolMode[spec.poolMode],
    idleSuspendSeconds: spec.idleSuspendSeconds ?? 0,
    backup: backup === null ? undefined : backupPolicyToProto(backup),
  };
}
