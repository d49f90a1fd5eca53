/**
 * The runtime interface: how the agent makes, starts, stops and removes one tenant's PostgreSQL
 * server. Two drivers implement it (process-runtime.ts, docker-runtime.ts); the instance manager
 * only ever talks to this interface. Every method is idempotent, so a converge that was cut short
 * (agent killed, stream broken) is simply run again.
 */
import type { ClientConfig } from 'pg';
import type { Resources, RunState } from '@pgs/tenancy';

/** Which driver. */
export type RuntimeKind = 'process' | 'docker';

/** The part of a desired instance a runtime needs. */
export interface RuntimeSpec {
  tenantId: string;
  specRevision: number;
  resources: Resources;
  /** Major version id ('' = the driver's default). */
  version: string;
  /** Container image (docker); '' = the driver's template. */
  image: string;
  /** 0 = keep the instance's port, or pick one from the range for a new instance. */
  port: number;
  /** Remembered so a restarted agent knows whether to bring a dead instance back. */
  runState: RunState;
}

/** One instance as the runtime sees it. */
export interface RuntimeInstance {
  tenantId: string;
  address: string;
  port: number;
  running: boolean;
  /** Postmaster pid (process) or 0 (docker, where the pid is another namespace's). */
  pid: number;
  /** Postmaster pid as text (process) or container id (docker). */
  runtimeId: string;
  /** The last spec the runtime applied, as remembered on disk (or in container labels). */
  spec: RuntimeSpec;
}

/** A runtime driver. */
export interface InstanceRuntime {
  readonly kind: RuntimeKind;
  /** Prepares the host (template data directory, image check); called once at agent start. */
  init(): Promise<void>;
  /** Every instance on this host (for adoption after an agent restart). */
  list(): Promise<RuntimeInstance[]>;
  /** One instance, or undefined when it does not exist. */
  inspect(tenantId: string): Promise<RuntimeInstance | undefined>;
  /**
   * Creates the instance when missing (not started); otherwise applies a changed spec (settings,
   * limits, port), reloading or restarting a running instance when that is what the change needs.
   */
  ensure(spec: RuntimeSpec): Promise<RuntimeInstance>;
  /** Starts it (adopting a running one, clearing a stale pid file) and waits until it accepts connections. */
  start(tenantId: string): Promise<RuntimeInstance>;
  /** Stops it cleanly: fast shutdown, then immediate after the stop timeout. */
  stop(tenantId: string): Promise<void>;
  /** Stops it and deletes its data. Only ever called for an explicit deletion. */
  remove(tenantId: string): Promise<void>;
  /** How the agent connects as the superuser for administration (no stored secret). */
  adminConnection(tenantId: string, database?: string): ClientConfig;
  /** Waits for the driver's background work and releases its resources; instances keep running. */
  close(): Promise<void>;
}
