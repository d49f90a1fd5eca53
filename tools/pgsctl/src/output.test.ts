import { describe, expect, it } from 'vitest';
import { formatAge, renderDocument, renderTable, type Column } from './output.js';

describe('output', () => {
  const columns: Column<{ name: string; n: number; note: string }>[] = [
    { header: 'name', value: (r) => r.name },
    { header: 'n', value: (r) => r.n, right: true },
    { header: 'note', value: (r) => r.note, wide: true },
  ];

  it('aligns columns, right-aligns numbers, hides wide columns unless asked, and shows - for empty', () => {
    const rows = [{ name: 'acme', n: 3, note: '' }, { name: 'b', n: 120, note: 'two\nlines' }];
    expect(renderTable(columns, rows)).toBe('NAME    N\nacme    3\nb     120\n');
    expect(renderTable(columns, rows, { wide: true })).toBe('NAME    N  NOTE\nacme    3  -\nb     120  two lines\n');
    expect(renderTable(columns, [], { empty: 'No tenants found.' })).toBe('No tenants found.\n');
  });

  it('renders the same value as JSON and YAML', () => {
    const value = [{ id: 'acme', revision: 2 }];
    expect(JSON.parse(renderDocument('json', value))).toEqual(value);
    expect(renderDocument('yaml', value)).toBe('- id: acme\n  revision: 2\n');
  });

  it('formats ages like kubectl', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    expect(formatAge('2025-01-01T11:59:15Z', now)).toBe('45s');
    expect(formatAge('2025-01-01T11:00:00Z', now)).toBe('60m');
    expect(formatAge('2024-12-30T13:00:00Z', now)).toBe('47h');
    expect(formatAge('2024-12-30T12:00:00Z', now)).toBe('2d');
    expect(formatAge('2024-12-20T12:00:00Z', now)).toBe('12d');
    expect(formatAge(null, now)).toBe('-');
  });
});
