import { describe, expect, it } from 'vitest';
import { loadYamlWriter, formatAge, formatDuration, formatProblems, formatTime, renderDocument, renderTable, type Column } from './output.js';

describe('output', () => {
  const columns: Column<{ name: string; n: number; note: string }>[] = [
    { header: 'name', value: (r) => r.name },
    { header: 'n', value: (r) => r.n, right: true },
    { header: 'note', value: (r) => r.note, wide: true },
  ];

  it('aligns columns, right-aligns numbers, hides wide columns unless asked, and shows - for empty', () => {
    const rows = [
      { name: 'acme', n: 3, note: '' },
      { name: 'b', n: 120, note: 'two\nlines' },
    ];
    expect(renderTable(columns, rows)).toBe('NAME    N\nacme    3\nb     120\n');
    expect(renderTable(columns, rows, { wide: true })).toBe('NAME    N  NOTE\nacme    3  -\nb     120  two lines\n');
    expect(renderTable(columns, [], { empty: 'No tenants found.' })).toBe('No tenants found.\n');
  });

  it('renders the same value as JSON and YAML', async () => {
    await loadYamlWriter();
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

  it('formats lengths of time in their two largest units', () => {
    expect(formatDuration(42_000)).toBe('42.0s');
    expect(formatDuration(185_000)).toBe('3m05s');
    expect(formatDuration(7_800_000)).toBe('2h10m');
    expect(formatDuration((6 * 24 + 23) * 3_600_000 + 59 * 60_000)).toBe('6d23h');
  });

  it('shows times to the second, and milliseconds only when there are some', () => {
    expect(formatTime('2026-12-06T10:15:00.000Z')).toBe('2026-12-06T10:15:00Z');
    expect(formatTime('2026-12-06T10:15:00.250Z')).toBe('2026-12-06T10:15:00.250Z');
    expect(formatTime(null)).toBe('-');
  });

  it("lists problems one a line, a problem's own line breaks kept under it", () => {
    expect(formatProblems([])).toBe('');
    expect(formatProblems(['tenant acme: last good backup is 9d old', 'tenant b: WAL archiving failing\nsince 10:00'])).toBe(
      '! tenant acme: last good backup is 9d old\n! tenant b: WAL archiving failing\n  since 10:00\n',
    );
  });
});
