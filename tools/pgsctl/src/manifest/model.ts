/**
 * A tenant manifest as pgsctl understands it after validation: what the file asks for, where it
 * came from (for error messages), and which parts it manages. A part the manifest leaves out is
 * not managed: apply keeps whatever the tenant has, so a manifest can own a few fields only.
 */
import type { BackupPolicyView } from '../views.js';

/** The apiVersion and kind every document carries. */
export const MANIFEST_API_VERSION = 'pgs.dev/v1';
export const MANIFEST_KIND = 'Tenant';

/** Where a document came from: the file (or `-` for stdin) and its 1-based index in it. */
export interface ManifestSource {
  file: string;
  document: number;
}

/** Where a password comes from: an environment variable or a file (never the manifest itself). */
export type PasswordRef = { fromEnv: string } | { fromFile: string };

/** The spec fields a manifest may set; undefined = not managed. Values are in the domain's units. */
export interface ManagedSpec {
  cpuMillis?: number;
  memoryMib?: number;
  diskMib?: number;
  nodes?: number;
  syncReplicas?: number;
  version?: string;
  labels?: Record<string, string>;
  placement?: Record<string, string>;
  externalAccess?: boolean;
  connectionLimit?: number;
  description?: string;
  runState?: 'RUNNING' | 'STOPPED';
  poolMode?: 'NONE' | 'SESSION' | 'TRANSACTION';
  /** Seconds idle before suspending; 0 = off. */
  idleSuspendSeconds?: number;
  /** The tenant's own backup policy; unset parts are the fleet defaults. */
  backup?: BackupPolicyView;
}

/** A user inside the tenant; its password is used only when the user is created. */
export interface ManifestUser {
  name: string;
  description: string;
  password: PasswordRef;
}

/** A database inside the tenant. */
export interface ManifestDatabase {
  name: string;
  owner: string;
  description: string;
}

/** An init script: inline SQL, or a file relative to the manifest (read when apply creates the tenant). */
export interface ManifestInitScript {
  sql?: string;
  file?: string;
  /** '' = the tenant's default database. */
  database: string;
}

/** One validated Tenant document. `users` / `databases` undefined = not managed. */
export interface TenantManifest {
  source: ManifestSource;
  name: string;
  spec: ManagedSpec;
  /** The owner's password when the tenant is created; unset = the coordinator generates one. */
  ownerPassword?: PasswordRef;
  users?: ManifestUser[];
  databases?: ManifestDatabase[];
  /** Run once, in order, when apply creates the tenant (after its users and databases); ignored for a tenant that exists. */
  initSql?: ManifestInitScript[];
}

/** "file, document n (tenant x)" for messages. */
export function describeSource(source: ManifestSource, name?: string): string {
  return `${source.file}, document ${source.document}${name ? ` (tenant ${name})` : ''}`;
}
