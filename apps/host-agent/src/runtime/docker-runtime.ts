/**
 * The `docker` runtime: one container and one named volume per tenant, through the Docker Engine
 * API (dockerode; Docker itself or Podman's compatible service). Containers carry the labels
 * `pgs.tenant` and `pgs.host` (and the spec they were made from), so an agent that restarts finds
 * and adopts them by label. The image comes from the versions catalog (InstanceSpec.image) or the
 * agent's template; it must already be on the host: the agent never pulls.
 *
 * The image's entrypoint (scripts/setup-podman.sh builds one) initdbs into the volume on first start
 * and execs postgres with the `-c` settings the agent passes as the command. The published port
 * is bound to the host's advertised address only. The agent administers the instance as
 * `postgres` over the unix socket, which lives in a host directory bind-mounted into the container
 * (<data-root>/docker/<tenant>, mode 0700): no superuser password exists anywhere.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import pg from 'pg';
import { isValidTenantId, type HostMajor } from '@pgs/tenancy';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from '../errors.js';
import { hbaConf, instanceSettings, tlsSettings } from './instance-config.js';
import type { OsUser } from './os-user.js';
import type { PortAllocator } from './port-allocator.js';
import type { InstanceRuntime, InstanceTls, RuntimeInstance, RuntimeSpec, StopMode } from './runtime.js';
import { checkedTenantId } from './tenant-paths.js';

/** What the docker runtime needs. */
export interface DockerRuntimeOptions {
  socketPath: string;
  hostId: string;
  /** The host's advertised address: the published port binds to it only. */
  address: string;
  /** Where the per-tenant socket directories go (<dataRoot>/docker/<tenant>). */
  dataRoot: string;
  /** Image when a spec names none; `{version}` is replaced by the major. */
  imageTemplate: string;
  /** Major when a spec names none. */
  defaultVersion: string;
  ports: PortAllocator;
  log: Logger;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** The host's postgres OS user (the image runs postgres with the same ids): owner of the TLS-only pg_hba. */
  runAs?: OsUser | undefined;
}

const LABEL_TENANT = 'pgs.tenant';
const LABEL_HOST = 'pgs.host';
const LABEL_SPEC = 'pgs.spec';
const LABEL_CONFIG = 'pgs.config';
const LABEL_PORT = 'pgs.port';
const LABEL_ADDRESS = 'pgs.address';
const DATA_MOUNT = '/var/lib/postgresql/data';
const SOCKET_MOUNT = '/var/run/postgresql';
/** Where the host's instance-tls directory is mounted (read-only) in every container. */
const TLS_MOUNT = '/pgs-tls';
/** The pg_hba.conf of TLS-only instances, written by the agent next to the certificate. */
const TLS_HBA_FILE = 'pg_hba.docker.conf';
const PG_PORT = 5432;
const MIB = 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The HTTP status of a Docker API error (404 no such container, 304 already started...). */
function statusOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
export function demuxLogs(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  // A TTY container (or an engine that does not frame) sends plain text.
  return out.length > 0 ? Buffer.concat(out).toString('utf8') : buf.toString('utf8');
}

/** The docker runtime driver. */
export class DockerRuntime implements InstanceRuntime {
  readonly kind = 'docker' as const;
  // Replicas need a base backup from another host into the container's volume; not built yet.
  readonly supportsReplication = false;
  private readonly docker: Docker;
  private readonly socketsDir: string;
  /** The majors of the labelled images found at init (undefined: none labelled). */
  private majors: HostMajor[] | undefined;
  private readonly log: Logger;
  private tls: InstanceTls = { files: undefined, required: false };

  constructor(private readonly o: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: o.socketPath });
    this.socketsDir = path.join(o.dataRoot, 'docker');
    this.log = o.log.child({ component: 'docker-runtime' });
  }

  async init(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new AgentError(
        'RUNTIME_ERROR',
        `no Docker Engine API at ${this.o.socketPath}: ${messageOf(err)} (start Docker, or Podman's service: scripts/setup-podman.sh)`,
        { cause: err },
      );
    }
    fs.mkdirSync(this.socketsDir, { recursive: true, mode: 0o700 });
    const version = await this.docker.version();
    this.log.info(
      { socket: this.o.socketPath, engine: version.Components?.[0]?.Name ?? 'docker', version: version.Version, apiVersion: version.ApiVersion },
      'docker engine reachable',
    );
    this.majors = await this.imageMajors();
  }

  /**
   * The majors of the PostgreSQL images on this host (scripts/setup-podman.sh labels them
   * pgs.postgres-major): this driver makes neither replicas nor backups, so none has those.
   */
  private async imageMajors(): Promise<HostMajor[] | undefined> {
    const images = await this.docker.listImages({ filters: { label: ['pgs.postgres-major'] } });
    const byMajor = new Map<string, HostMajor>();
    for (const image of images) {
      const major = image.Labels?.['pgs.postgres-major'] ?? '';
      if (!/^\d+$/.test(major) || byMajor.has(major)) continue;
      byMajor.set(major, { major, serverVersion: image.Labels?.['pgs.postgres-version'] ?? '', pgBasebackup: false, pgRewind: false, pgbackrest: false });
    }
    // No labelled image: say nothing, and the coordinator goes by its --versions catalog as before.
    return byMajor.size === 0 ? undefined : [...byMajor.values()].sort((a, b) => Number(b.major) - Number(a.major));
  }

  async close(): Promise<void> {
    // dockerode keeps no connection open between calls.
  }

  setTls(tls: InstanceTls): boolean {
    const changed = JSON.stringify(tls) !== JSON.stringify(this.tls);
    this.tls = { files: tls.files, required: tls.required };
    if (tls.files && tls.required) {
      // Published ports are NATed: the source address says nothing, so every network line needs TLS.
      const file = path.join(tls.files.dir, TLS_HBA_FILE);
      fs.writeFileSync(file, hbaConf(['0.0.0.0/0', '::/0'], '', true), { mode: 0o644 });
      if (this.o.runAs) fs.chownSync(file, this.o.runAs.uid, this.o.runAs.gid);
    }
    return changed;
  }

  async reloadTls(): Promise<void> {
    for (const inst of await this.list()) {
      if (!inst.running) continue;
      // The entrypoint execs postgres: the container's first process is the postmaster.
      await this.docker
        .getContainer(inst.runtimeId)
        .kill({ signal: 'SIGHUP' })
        .catch((err: unknown) => this.log.warn({ tenantId: inst.tenantId, err }, 'could not signal the instance to reload its certificate'));
    }
  }

  /** TLS settings inside the container (the certificate directory is mounted at TLS_MOUNT). */
  private tlsArgs(): { settings: Record<string, string>; mounts: { Type: 'bind'; Source: string; Target: string; ReadOnly: boolean }[] } {
    const files = this.tls.files;
    // No settings at all without a certificate: the command (and so the container) stays as it was.
    if (!files) return { settings: {}, mounts: [] };
    const inside = (file: string): string => path.posix.join(TLS_MOUNT, path.basename(file));
    return {
      settings: {
        ...tlsSettings({ certFile: inside(files.certFile), keyFile: inside(files.keyFile) }),
        ...(this.tls.required ? { hba_file: path.posix.join(TLS_MOUNT, TLS_HBA_FILE) } : {}),
      },
      mounts: [{ Type: 'bind', Source: files.dir, Target: TLS_MOUNT, ReadOnly: true }],
    };
  }

  private containerName(tenantId: string): string {
    return `pgs-${checkedTenantId(tenantId)}`;
  }

  private volumeName(tenantId: string): string {
    return `pgs-${checkedTenantId(tenantId)}-data`;
  }

  private socketDir(tenantId: string): string {
    return path.join(this.socketsDir, checkedTenantId(tenantId));
  }

  private async inspectRaw(tenantId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      const info = await this.docker.getContainer(this.containerName(tenantId)).inspect();
      // A container of that name made by someone else is not ours to adopt or change.
      if (info.Config.Labels?.[LABEL_TENANT] !== tenantId)
        throw new AgentError('RUNTIME_ERROR', `container ${this.containerName(tenantId)} exists but is not labelled ${LABEL_TENANT}=${tenantId}`);
      return info;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private toInstance(info: Docker.ContainerInspectInfo): RuntimeInstance {
    const labels = info.Config.Labels ?? {};
    const spec = JSON.parse(labels[LABEL_SPEC] ?? '{}') as RuntimeSpec;
    return {
      tenantId: labels[LABEL_TENANT] ?? '',
      address: labels[LABEL_ADDRESS] ?? this.o.address,
      port: Number(labels[LABEL_PORT] ?? 0),
      running: info.State.Running,
      pid: info.State.Running ? info.State.Pid : 0,
      runtimeId: info.Id,
      spec,
    };
  }

  async list(): Promise<RuntimeInstance[]> {
    const found = await this.docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL_HOST}=${this.o.hostId}`] }) });
    const out: RuntimeInstance[] = [];
    for (const c of found) {
      const tenantId = c.Labels[LABEL_TENANT];
      if (!tenantId || !isValidTenantId(tenantId)) continue;
      const info = await this.inspectRaw(tenantId);
      if (info) out.push(this.toInstance(info));
    }
    return out;
  }

  async inspect(tenantId: string): Promise<RuntimeInstance | undefined> {
    const info = await this.inspectRaw(tenantId);
    return info ? this.toInstance(info) : undefined;
  }

  private async requireImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) === 404)
        throw new AgentError('VERSION_NOT_INSTALLED', `image ${image} is not on this host; load or pull it there (the agent never pulls)`, { cause: err });
      throw err;
    }
  }

  private async ensureVolume(tenantId: string): Promise<void> {
    const volume = this.docker.getVolume(this.volumeName(tenantId));
    try {
      await volume.inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.docker.createVolume({ Name: this.volumeName(tenantId), Labels: { [LABEL_TENANT]: tenantId, [LABEL_HOST]: this.o.hostId } });
    }
  }

  private async takenPorts(except: string): Promise<Set<number>> {
    const taken = new Set<number>();
    for (const inst of await this.list()) if (inst.tenantId !== except) taken.add(inst.port);
    return taken;
  }

  async ensure(spec: RuntimeSpec): Promise<RuntimeInstance> {
    const t = spec.tenantId;
    const version = spec.version || this.o.defaultVersion;
    const image = spec.image || this.o.imageTemplate.replaceAll('{version}', version);
    await this.requireImage(image);
    const existing = await this.inspectRaw(t);
    const port =
      spec.port > 0 ? spec.port : existing ? Number(existing.Config.Labels?.[LABEL_PORT] ?? 0) : await this.o.ports.allocate(await this.takenPorts(t));
    const tls = this.tlsArgs();
    const settings = { ...instanceSettings({ listenAddresses: '*', port: PG_PORT, socketDir: SOCKET_MOUNT, resources: spec.resources }), ...tls.settings };
    const cmd = Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    const nanoCpus = spec.resources.cpuMillis * 1_000_000;
    const memory = spec.resources.memoryMib * MIB;
    const configHash = crypto
      .createHash('sha256')
      .update(JSON.stringify({ image, cmd, nanoCpus, memory, address: this.o.address, port }))
      .digest('hex')
      .slice(0, 16);
    if (existing?.Config.Labels?.[LABEL_CONFIG] === configHash) return this.toInstance(existing);
    const wasRunning = existing?.State.Running ?? false;
    if (existing) {
      this.log.info({ tenantId: t }, 'spec changed: recreating the container (the data volume is kept)');
      await this.stop(t);
      await this.docker.getContainer(existing.Id).remove({ force: true });
    }
    await this.ensureVolume(t);
    const sockDir = this.socketDir(t);
    fs.mkdirSync(sockDir, { recursive: true, mode: 0o700 });
    const fullSpec: RuntimeSpec = { ...spec, version, image, port };
    await this.docker.createContainer({
      name: this.containerName(t),
      Image: image,
      Cmd: cmd,
      Labels: {
        [LABEL_TENANT]: t,
        [LABEL_HOST]: this.o.hostId,
        [LABEL_SPEC]: JSON.stringify(fullSpec),
        [LABEL_CONFIG]: configHash,
        [LABEL_PORT]: String(port),
        [LABEL_ADDRESS]: this.o.address,
      },
      ExposedPorts: { [`${PG_PORT}/tcp`]: {} },
      // Fast shutdown on stop; the agent escalates itself (stop()).
      StopSignal: 'SIGINT',
      HostConfig: {
        Mounts: [{ Type: 'volume', Source: this.volumeName(t), Target: DATA_MOUNT }, { Type: 'bind', Source: sockDir, Target: SOCKET_MOUNT }, ...tls.mounts],
        PortBindings: { [`${PG_PORT}/tcp`]: [{ HostIp: this.o.address, HostPort: String(port) }] },
        NanoCpus: nanoCpus,
        Memory: memory,
        // The agent decides when an instance runs (and brings back one that died).
        RestartPolicy: { Name: 'no' },
      },
    });
    this.log.info({ tenantId: t, image, port, nanoCpus, memory }, existing ? 'container recreated' : 'container and volume created');
    if (wasRunning) return this.start(t);
    const info = await this.inspectRaw(t);
    if (!info) throw new AgentError('RUNTIME_ERROR', `container of ${t} vanished right after it was created`);
    return this.toInstance(info);
  }

  async start(tenantId: string): Promise<RuntimeInstance> {
    const info = await this.inspectRaw(tenantId);
    if (!info) throw new AgentError('INSTANCE_NOT_FOUND', `no container of ${tenantId} on this host`);
    const container = this.docker.getContainer(info.Id);
    if (!info.State.Running) {
      try {
        await container.start();
      } catch (err) {
        if (statusOf(err) !== 304) throw new AgentError('START_FAILED', `container of ${tenantId} did not start: ${messageOf(err)}`, { cause: err });
      }
    }
    const deadline = Date.now() + this.o.startTimeoutMs;
    while (Date.now() < deadline) {
      const now = await this.inspectRaw(tenantId);
      if (!now?.State.Running) {
        const logs = demuxLogs((await container.logs({ stdout: true, stderr: true, tail: 20 })) as unknown as Buffer);
        throw new AgentError('START_FAILED', `container of ${tenantId} exited during start (${now?.State.ExitCode ?? 'gone'}): ${logs.trim().slice(-1500)}`);
      }
      if (await this.acceptsConnections(tenantId)) {
        this.log.info({ tenantId, containerId: now.Id, pid: now.State.Pid }, 'instance started');
        return this.toInstance(now);
      }
      await sleep(50);
    }
    throw new AgentError('START_FAILED', `container of ${tenantId} did not accept connections within ${this.o.startTimeoutMs} ms`);
  }

  private async acceptsConnections(tenantId: string): Promise<boolean> {
    const client = new pg.Client({ ...this.adminConnection(tenantId), connectionTimeoutMillis: 1000 });
    client.on('error', (err) => this.log.debug({ tenantId, err }, 'readiness probe connection error'));
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch (err) {
      this.log.debug({ tenantId, err }, 'instance not accepting connections yet');
      return false;
    } finally {
      await client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing the readiness probe failed'));
    }
  }

  async stop(tenantId: string, mode: StopMode = 'fast'): Promise<void> {
    const info = await this.inspectRaw(tenantId);
    if (!info?.State.Running) return;
    const container = this.docker.getContainer(info.Id);
    // Fast shutdown, then immediate, then SIGKILL, as for the process runtime (immediate: skip the first).
    const steps: { signal: string; waitMs: number }[] = [
      ...(mode === 'fast' ? [{ signal: 'SIGINT', waitMs: this.o.stopTimeoutMs }] : []),
      { signal: 'SIGQUIT', waitMs: 5000 },
      { signal: 'SIGKILL', waitMs: 10_000 },
    ];
    for (const step of steps) {
      try {
        await container.kill({ signal: step.signal });
      } catch (err) {
        // 409: not running any more; 404: gone.
        if (statusOf(err) === 409 || statusOf(err) === 404) return;
        throw err;
      }
      const deadline = Date.now() + step.waitMs;
      while (Date.now() < deadline) {
        const now = await this.inspectRaw(tenantId);
        if (!now?.State.Running) {
          this.log.info({ tenantId, signal: step.signal }, 'instance stopped');
          return;
        }
        await sleep(100);
      }
      this.log.warn({ tenantId, signal: step.signal, waitedMs: step.waitMs }, 'container did not stop in time; escalating');
    }
    throw new AgentError('STOP_FAILED', `container of ${tenantId} did not stop even after SIGKILL`);
  }

  async remove(tenantId: string): Promise<void> {
    const info = await this.inspectRaw(tenantId);
    if (info) {
      await this.stop(tenantId);
      try {
        await this.docker.getContainer(info.Id).remove({ force: true });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    }
    try {
      await this.docker.getVolume(this.volumeName(tenantId)).remove();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    fs.rmSync(this.socketDir(tenantId), { recursive: true, force: true });
    this.log.info({ tenantId }, 'container and its data volume deleted');
  }

  postgresMajors(): { majors: HostMajor[]; pgbackrestVersion: string } | undefined {
    return this.majors === undefined ? undefined : { majors: this.majors, pgbackrestVersion: '' };
  }

  readySpares(): number | undefined {
    return undefined;
  }

  async isStandby(): Promise<boolean> {
    // This driver never sets up a standby (supportsReplication is false).
    return false;
  }

  async checkpointLsn(): Promise<string> {
    // pg_controldata runs inside the container's namespace; the driver does not exec there. Unknown.
    return '';
  }

  adminConnection(tenantId: string, database = 'postgres'): pg.ClientConfig {
    return { host: this.socketDir(tenantId), port: PG_PORT, user: 'postgres', database };
  }
}
