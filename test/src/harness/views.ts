/** The parts of pgsctl's `-o json` documents the suite reads (its views, as a script sees them). */

/** One placement of a tenant. */
export interface PlacementJson {
  hostId: string;
  role: string;
  realization: string;
  reason: string;
  address: string;
  port: number;
}

/** A tenant as `pgsctl tenant get|list -o json` prints it. */
export interface TenantJson {
  id: string;
  status: string;
  statusReason: string;
  revision: number;
  spec: { externalAccess: boolean; nodes: number; syncReplicas: number; runState: string; connectionLimit: number; version: string };
  placements: PlacementJson[];
  /** When a SUSPENDED tenant was suspended (ISO time); null otherwise. */
  suspendedAt?: string | null;
}

/** A route as the routers see it. */
export interface RouteJson {
  tenantId: string;
  hostId: string;
  address: string;
  port: number;
  state: string;
  reason: string;
  externalAccess: boolean;
  revision: number;
}

/** `pgsctl tenant get -o json`. */
export interface TenantDetailsJson {
  tenant: TenantJson;
  route: RouteJson | null;
}

/** A host as `pgsctl host list -o json` prints it. */
export interface HostJson {
  id: string;
  address: string;
  state: string;
  runtime: string;
}

/** `pgsctl route list -o json`. */
export interface RouteTableJson {
  revision: number;
  routes: RouteJson[];
  routers: Array<{ routerId: string; cancelAddress: string }>;
}

/** A router's /healthz document (the parts the suite reads). */
export interface RouterHealthJson {
  ok: boolean;
  routerId: string;
  routes: number;
  cache: { revision: number; connected: boolean };
}

/** A backup as `pgsctl backup get|create -o json` prints it. */
export interface BackupJson {
  id: string;
  tenantId: string;
  type: string;
  status: string;
  reason: string;
  hostId: string;
  label: string;
  stanza: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** `pgsctl backup list -o json`: newest first, and the times a restore can reach. */
export interface BackupListJson {
  backups: BackupJson[];
  window: { earliest: string | null; latest: string | null } | null;
}

/** What `pgsctl tenant restore|recreate --from-backup --wait -o json` prints. */
export interface RestoreResultJson {
  restore: RestoreJson;
  tenant: TenantJson | null;
}

/** A restore as pgsctl prints it. */
export interface RestoreJson {
  id: string;
  sourceTenantId: string;
  targetTenantId: string;
  state: string;
  reason: string;
  recoveredLsn: string;
  recoveredTime: string | null;
  missingWalBytes: number;
}
