import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MONITORING = path.resolve(import.meta.dirname, '..');

/** Series Prometheus adds itself, and labels every scrape or histogram has. */
const PROMETHEUS_SERIES = new Set(['up']);
const PROMETHEUS_LABELS = new Set(['instance', 'job', 'le']);
const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'];

interface Defined {
  file: string;
  labels: Set<string>;
}

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => !f.includes(`${path.sep}testing${path.sep}`) && !f.includes(`${path.sep}gen${path.sep}`));
}

/** Every `name: 'pgs_…'` in the apps' and libs' sources, with the labelNames beside it. */
function definedMetrics(): Map<string, Defined> {
  const out = new Map<string, Defined>();
  const dirs = ['apps', 'libs'].flatMap((top) => fs.readdirSync(path.join(ROOT, top)).map((p) => path.join(ROOT, top, p, 'src')));
  for (const file of dirs.filter((d) => fs.existsSync(d)).flatMap(sourceFiles)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/name:\s*'(pgs_[a-z0-9_]+)'/g)) {
      // The metric's options object: up to its closing brace (labelNames sits inside it).
      const rest = text.slice(m.index, text.indexOf('}', m.index) + 1);
      const labels = /labelNames:\s*\[([^\]]*)\]/.exec(rest)?.[1] ?? '';
      out.set(m[1]!, { file: path.relative(ROOT, file), labels: new Set([...labels.matchAll(/'([a-z_]+)'/g)].map((l) => l[1]!)) });
    }
    // The coordinator's per-tenant gauges are made by one helper, `perTenant('pgs_…', help, value)`,
    // whose only label is `tenant`.
    for (const m of text.matchAll(/perTenant\(\s*'(pgs_[a-z0-9_]+)'/g)) out.set(m[1]!, { file: path.relative(ROOT, file), labels: new Set(['tenant']) });
  }
  return out;
}

/** The PromQL expressions of the alerting rules and of the dashboard's panels, with where each is. */
function expressions(): { where: string; expr: string }[] {
  const rules = parseYaml(fs.readFileSync(path.join(MONITORING, 'prometheus', 'pgs-alerts.yaml'), 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string }[] }[];
  };
  const dashboard = JSON.parse(fs.readFileSync(path.join(MONITORING, 'grafana', 'pgs-fleet.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  return [
    ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
  ];
}

function baseName(series: string, defined: Map<string, Defined>): string | undefined {
  if (defined.has(series)) return series;
  const suffix = HISTOGRAM_SUFFIXES.find((s) => series.endsWith(s));
  const base = suffix === undefined ? undefined : series.slice(0, -suffix.length);
  return base !== undefined && defined.has(base) ? base : undefined;
}

describe('monitoring files', () => {
  const defined = definedMetrics();
  const exprs = expressions();

  it("finds the components' metrics and the expressions to check", () => {
    expect(defined.size).toBeGreaterThan(20);
    expect(exprs.length).toBeGreaterThan(30);
  });

  it('use only metric names some component defines, and only labels those metrics carry', () => {
    const problems: string[] = [];
    for (const { where, expr } of exprs) {
      for (const m of expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(\{([^}]*)\})?/g)) {
        const series = m[1]!;
        if (!series.startsWith('pgs_') && !(PROMETHEUS_SERIES.has(series) && m[2] !== undefined)) continue;
        if (PROMETHEUS_SERIES.has(series)) continue;
        const base = baseName(series, defined);
        if (base === undefined) {
          problems.push(`${where}: ${series} is defined by no component`);
          continue;
        }
        const labels = defined.get(base)?.labels ?? new Set<string>();
        for (const l of (m[3] ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g)) {
          if (!labels.has(l[1]!) && !PROMETHEUS_LABELS.has(l[1]!)) problems.push(`${where}: ${base} has no label ${l[1]} (${defined.get(base)?.file})`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('give every alert a duration, a severity and a summary', () => {
    const rules = parseYaml(fs.readFileSync(path.join(MONITORING, 'prometheus', 'pgs-alerts.yaml'), 'utf8')) as {
      groups: { rules: { alert: string; for?: string; labels?: { severity?: string }; annotations?: { summary?: string } }[] }[];
    };
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      expect({ alert: r.alert, for: r.for, severity: r.labels?.severity, summary: typeof r.annotations?.summary }).toEqual({
        alert: r.alert,
        for: expect.stringMatching(/^\d+[smh]$/),
        severity: expect.stringMatching(/^(critical|warning)$/),
        summary: 'string',
      });
    }
  });
});
