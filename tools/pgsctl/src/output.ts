/**
 * Output for people and for scripts: aligned tables (kubectl style: upper-case headers, two
 * spaces between columns, no borders), `-o json` and `-o yaml` of the same views.
 */
import { UsageError } from './errors.js';
import { importYaml, type YamlLib } from './yaml-lib.js';

/** The formats `-o` accepts. `wide` is a table with more columns. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;

/** One of OUTPUT_FORMATS. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Checks the `-o` value. */
export function parseOutputFormat(text: string): OutputFormat {
  const format = OUTPUT_FORMATS.find((f) => f === text.toLowerCase());
  if (format === undefined) throw new UsageError(`invalid output format ${JSON.stringify(text)}: use one of ${OUTPUT_FORMATS.join(', ')}`);
  return format;
}

/** A table column: header and how to get the cell text from a row. `wide` columns show only with -o wide. */
export interface Column<T> {
  header: string;
  value: (row: T) => string | number | boolean;
  wide?: boolean;
  /** Right-align (numbers). */
  right?: boolean;
}

/** Renders rows as an aligned table; a message instead when there are no rows. */
export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[], options: { wide?: boolean; empty?: string } = {}): string {
  const shown = columns.filter((c) => options.wide === true || c.wide !== true);
  if (rows.length === 0) return `${options.empty ?? 'No resources found.'}\n`;
  const cells = rows.map((row) => shown.map((c) => cellText(c.value(row))));
  const widths = shown.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (shown[i]?.right === true ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(shown.map((c) => c.header.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

function cellText(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  const text = String(value);
  // A cell never breaks the table: newlines (e.g. in a reason) become spaces.
  return text === '' ? '-' : text.replace(/\s*\n\s*/g, ' ');
}

/** Key/value lines with aligned values, for `get` commands ("Status:   ACTIVE"). */
export function renderFields(fields: ReadonlyArray<readonly [string, string | number | boolean]>): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${cellText(v)}`).join('\n') + '\n';
}

let toYaml: YamlLib['stringify'] | undefined;

/**
 * Loads the YAML writer. The yaml package is a third of what a start would parse, so only -o yaml
 * loads it: CommandContext.prepare() awaits this before the command runs.
 */
export async function loadYamlWriter(): Promise<void> {
  toYaml ??= (await importYaml()).stringify;
}

/** JSON or YAML of a view (a list prints as an array / sequence); YAML needs loadYamlWriter() first. */
export function renderDocument(format: 'json' | 'yaml', value: unknown): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (toYaml === undefined) throw new Error('pgsctl bug: YAML output before loadYamlWriter()');
  return toYaml(value, { lineWidth: 0 });
}

/** `labels` as k=v,k=v (sorted, so output is stable). */
export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** How long ago, kubectl style: 45s, 12m, 3h, 5d. '-' when unknown. */
export function formatAge(iso: string | null, now: number): string {
  if (iso === null) return '-';
  const seconds = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

/** Elapsed time for progress lines: 4.2s, 1m05s. */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/** A length of time for people, in its two largest units: 42.1s, 3m05s, 2h10m, 6d23h. */
export function formatDuration(ms: number): string {
  if (ms < 3_600_000) return formatElapsed(ms);
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

/** Bytes for people: 7.5 MiB, 812 KiB, 0 B. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * A time for tables and fields: ISO 8601 in UTC (2026-12-06T10:15:00Z), milliseconds only when
 * there are some, so a time copied into --to-time is never earlier than the one shown; '-' when unknown.
 */
export function formatTime(iso: string | null): string {
  return iso === null ? '-' : iso.replace(/\.000Z$/, 'Z');
}

/** Indents every non-empty line of `text` by `by`. */
export function indent(text: string, by = '  '): string {
  return text.replace(/^(?=.)/gm, by);
}

/** Problems as a list, one `! ` line each; a problem's own line breaks stay under its first line. */
export function formatProblems(problems: readonly string[]): string {
  return problems.map((p) => `! ${p.trim().replace(/\s*\n\s*/g, '\n  ')}`).join('\n') + (problems.length > 0 ? '\n' : '');
}
