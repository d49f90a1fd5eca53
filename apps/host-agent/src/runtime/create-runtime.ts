/** Builds the runtime driver the config names, with everything it needs from the host. */
import path from 'node:path';
import type { Logger } from '@pgs/service-kit';
import type { AgentConfig } from '../config.js';
import { CgroupLimits, detectCgroupRoot } from './cgroup-limits.js';
import { DockerRuntime } from './docker-runtime.js';
import { postgresRunAs, type OsUser } from './os-user.js';
import { PortAllocator } from './port-allocator.js';
import { findPostgresInstall } from './postgres-install.js';
import { ProcessRuntime } from './process-runtime.js';
import type { InstanceRuntime } from './runtime.js';

/** The host's postgres user, whose ids the image's postgres runs with (undefined when there is none here). */
function dockerTlsOwner(name: string, log: Logger): OsUser | undefined {
  try {
    return postgresRunAs(name);
  } catch (err) {
    log.warn({ err, user: name }, "no postgres OS user on this host: the instance TLS files keep the agent's owner");
    return undefined;
  }
}

/** Who owns the instance TLS files: the OS user postgres runs as (the process runtime requires one). */
export function instanceFilesOwner(config: AgentConfig, log: Logger): OsUser | undefined {
  return config.runtime === 'process' ? postgresRunAs(config.pgOsUser) : dockerTlsOwner(config.pgOsUser, log);
}

/** The configured runtime driver. */
export function createRuntime(config: AgentConfig, log: Logger): InstanceRuntime {
  const ports = new PortAllocator(config.portRange, config.address);
  switch (config.runtime) {
    case 'process':
      return new ProcessRuntime({
        dataRoot: path.resolve(config.dataRoot),
        address: config.address,
        allowCidrs: config.allowCidrs,
        install: findPostgresInstall(config.postgresBinDirs, config.pgBinDir),
        runAs: postgresRunAs(config.pgOsUser),
        ports,
        cgroups: new CgroupLimits(config.cgroupRoot ?? detectCgroupRoot(), log),
        log,
        startTimeoutMs: config.startTimeout,
        stopTimeoutMs: config.stopTimeout,
        spareClones: config.spareClones,
      });
    case 'docker':
      return new DockerRuntime({
        socketPath: config.dockerSocket,
        hostId: config.hostId,
        address: config.address,
        dataRoot: path.resolve(config.dataRoot),
        imageTemplate: config.dockerImage,
        defaultVersion: config.defaultVersion,
        ports,
        log,
        startTimeoutMs: config.startTimeout,
        stopTimeoutMs: config.stopTimeout,
        runAs: dockerTlsOwner(config.pgOsUser, log),
      });
  }
}
