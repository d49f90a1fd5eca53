/**
 * The PostgreSQL versions catalog: which majors tenants may ask for and the image the docker
 * runtime uses for each. The first entry is the default (TenantSpec.version '').
 */
import { ValidationError } from '@pgs/tenancy';

/** One catalog entry. */
export interface PostgresVersion {
  id: string;
  major: number;
  displayName: string;
  image: string;
  default: boolean;
  deprecated: boolean;
}

/** Parses `--versions` entries `15=localhost/pgs-postgres:15` (first = default). */
export function parseVersionCatalog(entries: readonly string[]): PostgresVersion[] {
  if (entries.length === 0) throw new ValidationError('versions', entries, 'at least one entry major=image, e.g. 15=localhost/pgs-postgres:15');
  return entries.map((entry, i) => {
    const [id = '', image = ''] = entry.split('=', 2);
    const major = Number(id);
    if (!/^\d{1,3}$/.test(id) || !image) throw new ValidationError('versions', entry, 'major=image, e.g. 15=localhost/pgs-postgres:15');
    return { id, major, displayName: `PostgreSQL ${major}`, image, default: i === 0, deprecated: false };
  });
}

/** The catalog with look-ups. */
export class VersionCatalog {
  constructor(readonly versions: readonly PostgresVersion[]) {}

  /** The version a spec asks for: '' resolves to the default; an unknown id is refused. */
  resolve(id: string, field = 'spec.version'): PostgresVersion {
    const found = id === '' ? this.versions.find((v) => v.default) : this.versions.find((v) => v.id === id);
    if (!found) throw new ValidationError(field, id, `one of ${this.versions.map((v) => v.id).join(', ')} (or empty for the default)`, { code: 'UNKNOWN_VERSION' });
    return found;
  }
}
