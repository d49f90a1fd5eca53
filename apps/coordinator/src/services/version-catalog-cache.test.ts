import { describe, expect, it } from 'vitest';
import { VersionCatalog } from './versions.js';

const major = (m: string, pgbackrest = true) => ({ major: m, serverVersion: `${m}.1`, pgBasebackup: true, pgRewind: true, pgbackrest });

describe('VersionCatalog built once per report', () => {
  it('serves the same catalog until a host reports, then the catalog with that report', () => {
    const catalog = new VersionCatalog([{ id: '15', image: 'pg:15', deprecated: false }]);
    catalog.report('h1', [major('15')], '2.45');
    const first = catalog.versions;
    expect(catalog.versions).toBe(first);
    expect(catalog.resolve('').hostIds).toEqual(['h1']);
    catalog.report('h2', [major('15')], '2.45');
    expect(catalog.versions).not.toBe(first);
    expect(catalog.resolve('15').hostIds.sort()).toEqual(['h1', 'h2']);
    // A host saying again what it runs (a reconnect) with a major it cannot back up changes what the catalog says.
    catalog.report('h1', [major('15', false)], '2.45');
    expect(catalog.resolve('15').serverVersions).toEqual(['15.1']);
    expect(catalog.versions).toBe(catalog.versions);
  });
});
