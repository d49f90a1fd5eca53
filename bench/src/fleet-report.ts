/**
 * Output of the fleet benchmarks: percentiles, a printed table, a JSON result in bench/results/
 * and an SVG bar chart beside it (no PNG: rendering one needs a rasterizer dependency; any
 * browser shows the SVG).
 */
import fs from 'node:fs';
import path from 'node:path';

/** bench/results/ */
export const RESULTS_DIR = path.resolve(import.meta.dirname, '..', 'results');

/** Nearest-rank percentile of `values` (0 < p <= 100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** The largest of `values` (-Infinity for none). Not Math.max(...values): a spread of some 125,000 or more values overflows the call stack. */
export function maxOf(values: readonly number[]): number {
  return values.reduce((m, v) => (v > m ? v : m), Number.NEGATIVE_INFINITY);
}

/** The smallest of `values` (Infinity for none), for the same reason by a loop. */
export function minOf(values: readonly number[]): number {
  return values.reduce((m, v) => (v < m ? v : m), Number.POSITIVE_INFINITY);
}

/** p50/p95/p99/max/mean of a sample. */
export function summarize(values: readonly number[]): { n: number; p50: number; p95: number; p99: number; max: number; mean: number } {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: values.length ? maxOf(values) : Number.NaN,
    mean: values.length ? values.reduce((s, v) => s + v, 0) / values.length : Number.NaN,
  };
}

/** A printable table: header row and rows of cells. */
export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

function cell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '-';
  return Number.isInteger(v) ? v.toLocaleString('en') : v.toFixed(v < 10 ? 2 : 1);
}

/** Renders a table with aligned columns. */
export function renderTable(table: Table): string {
  const cells = [table.columns, ...table.rows.map((r) => r.map(cell))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [`\n${table.title}`, line(cells[0] as string[]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** One bar of a chart. */
export interface Bar {
  label: string;
  value: number;
}

/** An SVG bar chart (values labelled, optional goal line). */
export function barChartSvg(title: string, unit: string, bars: readonly Bar[], goal?: { value: number; label: string }): string {
  const width = 120 + bars.length * 90;
  const height = 320;
  const top = 50;
  const bottom = 260;
  const max = Math.max(...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), goal?.value ?? 0) * 1.15 || 1;
  const y = (v: number): number => bottom - ((bottom - top) * v) / max;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line x1="70" y1="${bottom}" x2="${width - 20}" y2="${bottom}" stroke="#333"/>`,
    `<text x="14" y="${top - 10}">${esc(unit)}</text>`,
  ];
  bars.forEach((b, i) => {
    const x = 90 + i * 90;
    const v = Number.isFinite(b.value) ? b.value : 0;
    parts.push(`<rect x="${x}" y="${y(v)}" width="56" height="${bottom - y(v)}" fill="#4c78a8"/>`);
    parts.push(`<text x="${x + 28}" y="${y(v) - 6}" text-anchor="middle">${esc(cell(b.value))}</text>`);
    parts.push(`<text x="${x + 28}" y="${bottom + 18}" text-anchor="middle">${esc(b.label)}</text>`);
  });
  if (goal) {
    parts.push(`<line x1="70" y1="${y(goal.value)}" x2="${width - 20}" y2="${y(goal.value)}" stroke="#d62728" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${width - 22}" y="${y(goal.value) - 6}" text-anchor="end" fill="#d62728">${esc(goal.label)}</text>`);
  }
  parts.push('</svg>\n');
  return parts.join('\n');
}

/** Prints the tables and writes <name>.json (and <name>.svg when a chart is given) to bench/results/. */
export function report(name: string, result: { tables: Table[]; data: unknown; chart?: string }): void {
  for (const t of result.tables) console.log(renderTable(t));
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, `${name}.json`);
  fs.writeFileSync(json, `${JSON.stringify({ benchmark: name, at: new Date().toISOString(), ...(result.data as object) }, null, 2)}\n`);
  console.log(`\nresult: ${path.relative(process.cwd(), json)}`);
  if (result.chart) {
    const svg = path.join(RESULTS_DIR, `${name}.svg`);
    fs.writeFileSync(svg, result.chart);
    console.log(`chart:  ${path.relative(process.cwd(), svg)}`);
  }
}

/** "met" or "MISSED" for a goal. */
export function verdict(ok: boolean): string {
  return ok ? 'met' : 'MISSED';
}

/** One line of a line chart: (x, y) points. */
export interface Series {
  label: string;
  points: Array<[number, number]>;
}

const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#e45756', '#72b7b2'];

/**
 * An SVG line chart of how a cost grows (x on a log scale when it spans 20× or more, as the
 * scale simulator's tenant counts do), points labelled, optional goal line.
 */
export function lineChartSvg(title: string, xLabel: string, unit: string, series: readonly Series[], goal?: { value: number; label: string }): string {
  const width = 640;
  const height = 360;
  const left = 80;
  const right = width - 150;
  const top = 50;
  const bottom = 290;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map(([x]) => x);
  const xMin = Math.min(...xs, Number.POSITIVE_INFINITY);
  const xMax = Math.max(...xs, Number.NEGATIVE_INFINITY);
  const log = xMin > 0 && xMax / xMin >= 20;
  const fx = (x: number): number => (log ? Math.log10(x) : x);
  const span = fx(xMax) - fx(xMin) || 1;
  const X = (x: number): number => left + ((right - left) * (fx(x) - fx(xMin))) / span;
  const yMax = Math.max(...pts.map(([, y]) => y), goal?.value ?? 0) * 1.15 || 1;
  const Y = (y: number): number => bottom - ((bottom - top) * y) / yMax;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${(left + right) / 2}" y="${height - 20}" text-anchor="middle">${esc(xLabel)}${log ? ' (log scale)' : ''}</text>`,
    `<text x="14" y="${top - 12}">${esc(unit)}</text>`,
  ];
  for (const x of [...new Set(xs)]) parts.push(`<text x="${X(x)}" y="${bottom + 16}" text-anchor="middle">${esc(cell(x))}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (ok.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${ok.map(([x, y]) => `${X(x)},${Y(y)}`).join(' ')}"/>`);
    for (const [x, y] of ok) {
      parts.push(`<circle cx="${X(x)}" cy="${Y(y)}" r="3.5" fill="${color}"/>`);
      parts.push(`<text x="${X(x) + 5}" y="${Y(y) - 6}" fill="${color}">${esc(cell(Math.round(y * 10) / 10))}</text>`);
    }
    parts.push(`<text x="${right + 12}" y="${top + 16 * i}" fill="${color}">${esc(s.label)}</text>`);
  });
  if (goal) {
    parts.push(`<line x1="${left}" y1="${Y(goal.value)}" x2="${right}" y2="${Y(goal.value)}" stroke="#d62728" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${right}" y="${Y(goal.value) - 6}" text-anchor="end" fill="#d62728">${esc(goal.label)}</text>`);
  }
  parts.push('</svg>\n');
  return parts.join('\n');
}

/** Writes an extra SVG to bench/results/<name>.svg. */
export function writeChart(name: string, svg: string): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.svg`);
  fs.writeFileSync(file, svg);
  return file;
}
