/**
 * The PostgreSQL versions catalog: the majors configured with `--versions` (the image the docker
 * runtime uses for each) joined with the majors each agent reported in its Hello (server version,
 * pg_basebackup, pg_rewind, pgBackRest support). The rules (what is listed, the default, what a
 * major cannot serve) are pure functions in @pgs/tenancy; this file keeps the reports.
 *
 * The reports live in memory: an agent says them on every connect, and only connected (READY)
 * hosts take placements, so a restarted coordinator knows them again before it places anything
 * there. A host that reported nothing (an older agent, the docker runtime) is taken to run the
 * configured majors with every feature, as before hosts reported them.
 */
import {
  buildVersionCatalog,
  ValidationError,
  versionProblem,
  type CatalogVersion,
  type ConfiguredVersion,
  type HostMajor,
  type HostVersions,
  type VersionNeeds,
} from '@pgs/tenancy';

/** One catalog entry as the APIs show it. */
export type PostgresVersion = CatalogVersion;

/** Parses `--versions` entries `15=localhost/pgs-postgres:15` (the first is the default while no host says better). */
export function parseVersionCatalog(entries: readonly string[]): ConfiguredVersion[] {
  if (entries.length === 0) throw new ValidationError('versions', entries, 'at least one entry major=image, e.g. 15=localhost/pgs-postgres:15');
  return entries.map((entry) => {
    const [id = '', image = ''] = entry.split('=', 2);
    if (!/^\d{1,3}$/.test(id) || !image) throw new ValidationError('versions', entry, 'major=image, e.g. 15=localhost/pgs-postgres:15');
    return { id, image, deprecated: false };
  });
}

/** The catalog with look-ups. */
export class VersionCatalog {
  private readonly reports = new Map<string, HostVersions>();
  /**
   * The catalog built from the reports, until the next report. Building it walks every host's
   * report, and every desired instance resolves its version: rebuilt per call, a host's full
   * desired set cost hosts × instances (at 200 hosts, 5% of a loaded coordinator's CPU profile).
   */
  private built: readonly PostgresVersion[] | undefined;

  constructor(readonly configured: readonly ConfiguredVersion[]) {}

  /** Records what a host's Hello said; an empty list = it did not say (runs the configured majors). */
  report(hostId: string, majors: readonly HostMajor[], pgbackrestVersion: string): void {
    this.reports.set(hostId, { hostId, majors: majors.length === 0 ? undefined : [...majors], pgbackrestVersion });
    this.built = undefined;
  }

  /** What a host reported, or undefined when it has not connected since the coordinator started. */
  hostMajors(hostId: string): readonly HostMajor[] | undefined {
    return this.reports.get(hostId)?.majors;
  }

  /** The image configured for a major ('' = the docker agent's own template). */
  imageOf(id: string): string {
    return this.configured.find((c) => c.id === id)?.image ?? '';
  }

  /** Every version, newest first, with where it runs and what it supports. */
  get versions(): readonly PostgresVersion[] {
    this.built ??= buildVersionCatalog(this.configured, [...this.reports.values()]);
    return this.built;
  }

  /** The version a spec asks for: '' resolves to the default; an unknown id is refused. */
  resolve(id: string, field = 'spec.version'): PostgresVersion {
    const all = this.versions;
    const found = id === '' ? all.find((v) => v.default) : all.find((v) => v.id === id);
    if (!found) throw new ValidationError(field, id, `one of ${all.map((v) => v.id).join(', ')} (or empty for the default)`, { code: 'UNKNOWN_VERSION' });
    return found;
  }

  /** Why the version cannot serve `needs` (replicas, backups), or undefined. */
  problem(needs: VersionNeeds): string | undefined {
    return versionProblem(this.resolve(needs.version), needs);
  }

  /** The majors a host can place instances of, and of those the ones it can clone replicas of (undefined: any). */
  placementView(hostId: string): { postgresMajors?: string[]; replicaMajors?: string[] } {
    const majors = this.hostMajors(hostId);
    if (majors === undefined) return {};
    return { postgresMajors: majors.map((m) => m.major), replicaMajors: majors.filter((m) => m.pgBasebackup).map((m) => m.major) };
  }
}
