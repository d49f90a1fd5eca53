/**
 * The PostgreSQL versions catalog as a pure function of what is configured (images, deprecations)
 * and what the hosts report they can run, and the rules that refuse a tenant whose major cannot
 * give it what it asks for (replicas, backups) before anything is created.
 */
/** One major a host can run, with the tools of that major beside it. */
export interface HostMajor {
  major: string;
  /** `postgres --version`, e.g. "18.4". */
  serverVersion: string;
  /** pg_basebackup of this major (a replica is cloned with it; an older one refuses a newer server). */
  pgBasebackup: boolean;
  /** pg_rewind of this major (a former primary rejoins with it). */
  pgRewind: boolean;
  /** The host's pgBackRest can back this major up. */
  pgbackrest: boolean;
  /** pg_dump and psql of this major (a major upgrade copies the schema of a source of this major or older with them); absent = not reported. */
  pgDump?: boolean;
  /** pg_upgrade of this major (an in-place upgrade to it); absent = not reported. */
  pgUpgrade?: boolean;
}

/** What one host reported; `majors` undefined = not reported (taken to run every configured major fully). */
export interface HostVersions {
  hostId: string;
  majors: readonly HostMajor[] | undefined;
  pgbackrestVersion: string;
}

/** A configured catalog entry (coordinator flag `--versions major=image`). */
export interface ConfiguredVersion {
  id: string;
  image: string;
  deprecated: boolean;
}

/** One catalog entry: a major, where it runs and what it supports. */
export interface CatalogVersion {
  id: string;
  major: number;
  displayName: string;
  image: string;
  default: boolean;
  deprecated: boolean;
  /** Hosts that run it (reported it, or reported nothing). */
  hostIds: string[];
  replicas: boolean;
  backups: boolean;
  /** Why replicas or backups are not possible; empty when both are. */
  limitations: string;
  serverVersions: string[];
}

/**
 * The newest PostgreSQL major each pgBackRest release backs up, newest release first. pgBackRest
 * refuses a cluster whose control and catalog versions it does not know ("unexpected control
 * version ... is this version of PostgreSQL supported?"): 2.45 refuses PostgreSQL 16.x releases
 * (measured), 2.47 added 16 and 2.52 added 17 (pgBackRest release notes).
 */
const PGBACKREST_SUPPORT: readonly (readonly [release: [number, number], maxMajor: number])[] = [
  [[2, 52], 17],
  [[2, 47], 16],
  [[2, 33], 15],
];

/** The newest major a pgBackRest version ("2.45", "2.52.1") backs up; undefined when unknown or older than listed. */
export function pgbackrestMaxMajor(version: string): number | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version.trim());
  if (!m) return undefined;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  for (const [[rMaj, rMin], maxMajor] of PGBACKREST_SUPPORT) {
    if (maj > rMaj || (maj === rMaj && min >= rMin)) return maxMajor;
  }
  return undefined;
}

function byMajorDesc(a: string, b: string): number {
  return Number(b) - Number(a);
}

/**
 * The catalog: every configured major and every major a host reports, newest first. The default
 * is the newest that runs somewhere with replicas and backups (the full feature set); failing
 * that the first configured entry (a fleet whose hosts report nothing behaves as before).
 */
export function buildVersionCatalog(configured: readonly ConfiguredVersion[], hosts: readonly HostVersions[]): CatalogVersion[] {
  const ids = new Set<string>(configured.map((c) => c.id));
  for (const h of hosts) for (const m of h.majors ?? []) ids.add(m.major);
  const entries = [...ids].sort(byMajorDesc).map((id): CatalogVersion => {
    const conf = configured.find((c) => c.id === id);
    const runners = hosts.filter((h) => (h.majors === undefined ? conf !== undefined : h.majors.some((m) => m.major === id)));
    const offers = runners.map((h) => h.majors?.find((m) => m.major === id));
    // A host that reported nothing is taken at its word of old: it runs the configured majors fully.
    const replicas = offers.some((o) => o === undefined || o.pgBasebackup);
    const backups = offers.some((o) => o === undefined || o.pgbackrest);
    const limitations: string[] = [];
    if (runners.length === 0) limitations.push('no host runs it now');
    else {
      if (!replicas) limitations.push(`no replicas: no host that runs it has pg_basebackup ${id}`);
      if (!backups) limitations.push(`no backups: ${pgbackrestLimit(runners)}`);
    }
    return {
      id,
      major: Number(id),
      displayName: `PostgreSQL ${id}`,
      image: conf?.image ?? '',
      default: false,
      deprecated: conf?.deprecated ?? false,
      hostIds: runners.map((h) => h.hostId).sort(),
      replicas: runners.length > 0 && replicas,
      backups: runners.length > 0 && backups,
      limitations: limitations.join('; '),
      serverVersions: [...new Set(offers.flatMap((o) => (o ? [o.serverVersion] : [])))].sort(),
    };
  });
  const full = entries.find((e) => e.replicas && e.backups && !e.deprecated);
  const fallback = configured[0] ? entries.find((e) => e.id === configured[0]?.id) : entries[0];
  const chosen = full ?? fallback;
  if (chosen) chosen.default = true;
  return entries;
}

function pgbackrestLimit(runners: readonly HostVersions[]): string {
  const versions = [...new Set(runners.map((h) => h.pgbackrestVersion))];
  if (versions.every((v) => v === '')) return 'pgBackRest is not installed on the hosts that run it';
  const max = versions.map((v) => (v === '' ? 'none' : `${v} backs up PostgreSQL up to ${pgbackrestMaxMajor(v) ?? 'an unknown major'}`));
  return `the hosts' pgBackRest ${max.join(', ')}`;
}

/** The part of a tenant spec the version rules look at. */
export interface VersionNeeds {
  version: string;
  nodes: number;
  /** Backups wanted: the fleet has a repository and the tenant's policy does not disable them. */
  backups: boolean;
}

/**
 * Why `entry` cannot serve `needs`, or undefined. Never a late failure: a replica without
 * pg_basebackup of the major and a backup beyond what pgBackRest knows are refused at create or
 * update, with what to do instead. A configured major no host runs yet is accepted: the tenant
 * waits to be placed, and placement says why it waits.
 */
export function versionProblem(entry: CatalogVersion, needs: VersionNeeds): string | undefined {
  if (entry.hostIds.length === 0) return undefined;
  if (needs.nodes > 1 && !entry.replicas) {
    return `PostgreSQL ${entry.id} cannot have replicas here: ${entry.limitations}; a replica is cloned with pg_basebackup of the server's own major (an older one refuses a newer server). Use nodes 1, or install the ${entry.id} client tools on the hosts`;
  }
  if (needs.backups && !entry.backups) {
    return `PostgreSQL ${entry.id} cannot be backed up here: ${entry.limitations}. Disable the tenant's backups (--no-backups / spec.backup.disabled) or use a version pgBackRest supports`;
  }
  return undefined;
}
