/** `pgsctl version list`: the PostgreSQL versions catalog (majors, where they run, what they support). */
import type { PostgresVersion } from '@pgs/proto';
import type { CommandContext } from '../context.js';
import { formatResult } from '../emit.js';
import { renderTable, type Column } from '../output.js';
import type { Options } from '../session.js';

/** One catalog entry as pgsctl shows it (-o json prints these). */
export interface VersionView {
  id: string;
  name: string;
  default: boolean;
  deprecated: boolean;
  serverVersions: string[];
  hosts: string[];
  replicas: boolean;
  backups: boolean;
  limitations: string;
  image: string;
}

export function versionView(v: PostgresVersion): VersionView {
  return {
    id: v.id,
    name: v.displayName,
    default: v.default,
    deprecated: v.deprecated,
    serverVersions: [...v.serverVersions],
    hosts: [...v.hostIds],
    replicas: v.replicasSupported,
    backups: v.backupsSupported,
    limitations: v.limitations,
    image: v.image,
  };
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

const columns: Column<VersionView>[] = [
  { header: 'version', value: (v) => `${v.id}${v.default ? ' (default)' : ''}${v.deprecated ? ' (deprecated)' : ''}` },
  { header: 'server', value: (v) => v.serverVersions.join(', ') || '-' },
  { header: 'hosts', value: (v) => v.hosts.join(', ') || 'none' },
  { header: 'replicas', value: (v) => yesNo(v.replicas) },
  { header: 'backups', value: (v) => yesNo(v.backups) },
  { header: 'image', value: (v) => v.image || '-', wide: true },
  { header: 'limitations', value: (v) => v.limitations },
];

export async function listVersions(ctx: CommandContext, _args: string[], _options: Options): Promise<void> {
  const res = await ctx.client.listVersions({}, ctx.call());
  const value = { versions: res.versions.map(versionView) };
  ctx.print(formatResult(ctx, value, () => renderTable(columns, value.versions, { wide: ctx.output === 'wide', empty: 'No versions.' })));
}
