/**
 * Proto <-> domain conversions shared by the service mappers: enums by name (the domain uses the
 * proto enum suffixes as strings), resources, timestamps and uint64 (bigint <-> number).
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { PoolMode, ResourcesSchema, RouteSchema, RouteState, type Resources as ProtoResources } from '@pgs/proto';
import type { Resources } from '@pgs/tenancy';
import type { RouteRecord } from '../../domain/model.js';

type EnumObject = Record<string, string | number>;

/** The proto enum value of a domain name ('ACTIVE' -> TenantStatus.ACTIVE); UNSPECIFIED (0) when unknown. */
export function enumValue<E extends EnumObject>(e: E, name: string | undefined): E[keyof E] {
  const v = name === undefined ? undefined : e[name];
  return (typeof v === 'number' ? v : 0) as E[keyof E];
}

/** The domain name of a proto enum value (TenantStatus.ACTIVE -> 'ACTIVE'); undefined for UNSPECIFIED/unknown. */
export function enumName<T extends string>(e: EnumObject, value: number): T | undefined {
  const name = e[value];
  return typeof name === 'string' && name !== 'UNSPECIFIED' ? (name as T) : undefined;
}

/** Epoch ms -> Timestamp (undefined for 0 = never). */
export function toTimestamp(ms: number): Timestamp | undefined {
  return ms > 0 ? timestampFromMs(ms) : undefined;
}

/** Timestamp -> epoch ms (0 when absent). */
export function fromTimestamp(ts: Timestamp | undefined): number {
  return ts ? timestampMs(ts) : 0;
}

/** uint64 from the wire -> number; values past 2^53 cannot be revisions or ids we issued. */
export function toNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Domain resources -> proto. */
export function toProtoResources(r: Resources): MessageInitShape<typeof ResourcesSchema> {
  return { cpuMillis: r.cpuMillis, memoryMib: r.memoryMib, diskMib: r.diskMib };
}

/** Proto resources -> domain (absent = zeros). */
export function fromProtoResources(r: ProtoResources | undefined): Resources {
  return { cpuMillis: r?.cpuMillis ?? 0, memoryMib: r?.memoryMib ?? 0, diskMib: r?.diskMib ?? 0 };
}

/** A stored route -> proto Route. */
export function toProtoRoute(r: RouteRecord): MessageInitShape<typeof RouteSchema> {
  return {
    tenantId: r.tenantId,
    hostId: r.hostId,
    address: r.address,
    port: r.port,
    state: enumValue(RouteState, r.state),
    reason: r.reason,
    externalAccess: r.externalAccess,
    connectionLimit: r.connectionLimit,
    revision: BigInt(r.revision),
    poolMode: enumValue(PoolMode, r.poolMode),
    users: r.users.map((u) => ({ name: u.name, scramVerifier: u.scramVerifier })),
  };
}
