/**
 * ops/grafana/tow-and-go-sink.json, the Grafana dashboard: every metric a panel (or the instance
 * variable) queries exists in the service's /metrics, every tow_and_go_ metric the service exposes
 * is on some panel, the panels cover what issue 11 asks for (throughput, outcomes, lag, freshness,
 * stalls, latency, RSS), and every panel reads the datasource template variable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposedMetricNames } from '../support/metrics-names.ts';

interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly targets?: readonly Target[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: unknown;
  readonly multi?: boolean;
  readonly current?: { readonly value?: unknown };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly templating: { readonly list: readonly Variable[] };
  readonly panels: readonly Panel[];
}

const FILE = join(import.meta.dirname, '../../ops/grafana/tow-and-go-sink.json');
const DASHBOARD = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard;
const PANELS = DASHBOARD.panels.filter((p) => p.type !== 'row');
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${datasource}, literally
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** Words that are PromQL syntax, never a metric, when not followed by `(`. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

/**
 * The metric names a PromQL expression selects: string literals, label matchers `{...}`, ranges
 * `[...]` and grouping clauses (`by (...)`, `without (...)`, `on (...)`, `ignoring (...)`,
 * `group_left (...)`, `group_right (...)`) are dropped; of the identifiers left, functions and
 * aggregations (followed by `(`), keywords, and anything glued to a number or a `$` variable are not
 * metrics.
 */
function metricsOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const [, name = '', call] of bare.matchAll(/(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** A histogram's series name to its metric's name. */
const base = (name: string): string => name.replace(/_(?:bucket|sum|count)$/, '');

/** Every expression on the dashboard, with where it is (for the failure message). */
function expressions(): { readonly where: string; readonly expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of PANELS) for (const t of p.targets ?? []) out.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of DASHBOARD.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    // label_values(metric{...}, label): only the first argument is a selector.
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(q)?.[1] ?? q;
    out.push({ where: `variable ${v.name}`, expr: selector });
  }
  return out;
}

describe('metricsOf (the PromQL tokenizer the dashboard check relies on)', () => {
  it('keeps metric names and drops functions, labels, ranges, grouping, keywords and numbers', () => {
    expect(
      metricsOf(
        'histogram_quantile(0.99, sum by (le, instance) (rate(a_seconds_bucket{job="$job", outcome=~"created|x"}[$__rate_interval]))) ' +
          '/ on (job) group_left (instance) b_total offset 15m > bool 1e3 and time() - max without (partition) (c_seconds > 0) unless d',
      ),
    ).toEqual(['a_seconds_bucket', 'b_total', 'c_seconds', 'd']);
  });
});

describe('ops/grafana/tow-and-go-sink.json', () => {
  it('is a dashboard with a uid, a title and a recent schema', () => {
    expect(DASHBOARD.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(DASHBOARD.title).toBe('tow-and-go-sink');
    expect(DASHBOARD.schemaVersion).toBeGreaterThanOrEqual(36);
  });

  it('has the datasource, job and instance variables', () => {
    const vars = new Map(DASHBOARD.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    // The job the alert rules assume (ops/prometheus/alerts.yml).
    expect(vars.get('job')?.current?.value).toBe('tow-and-go-sink');
    expect(vars.get('instance')).toMatchObject({ type: 'query', multi: true, datasource: DATASOURCE });
  });

  it('reads the datasource variable in every panel and target, and scopes every query to $job and $instance', () => {
    expect(PANELS.length).toBeGreaterThan(10);
    for (const p of PANELS) {
      expect(p.datasource, `panel ${p.id}`).toEqual(DATASOURCE);
      expect(p.targets?.length, `panel ${p.id}`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource ?? DATASOURCE, `panel ${p.id} ${t.refId}`).toEqual(DATASOURCE);
        for (const selector of t.expr.match(/\{[^}]*\}/g) ?? []) {
          expect(selector, `panel ${p.id} ${t.refId}`).toContain('job="$job"');
          expect(selector, `panel ${p.id} ${t.refId}`).toContain('instance=~"$instance"');
        }
      }
    }
  });

  it('has unique panel ids and panels inside the 24-column grid', () => {
    const ids = DASHBOARD.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of DASHBOARD.panels) expect(p.gridPos.x + p.gridPos.w, `panel ${p.id}`).toBeLessThanOrEqual(24);
  });

  it('covers throughput, outcomes, lag, freshness, stalls, latency and RSS (issue 11)', () => {
    const titles = PANELS.map((p) => p.title);
    for (const topic of [/throughput/i, /outcome/i, /consumer lag/i, /freshness/i, /stall/i, /latency/i, /\bRSS\b/, /dead letter/i, /commit/i, /restart/i]) {
      expect(
        titles.some((t) => topic.test(t)),
        String(topic),
      ).toBe(true);
    }
  });

  it('queries only metrics that the service exposes', async () => {
    const exposed = await exposedMetricNames();
    let queried = 0;
    for (const { where, expr } of expressions()) {
      const names = metricsOf(expr);
      expect(names.length, `${where}: no metric in ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        queried += 1;
        expect(exposed, `${where} queries ${name}`).toContain(name);
      }
    }
    expect(queried).toBeGreaterThan(20);
  });

  it('shows every tow_and_go_ metric the service exposes', async () => {
    const onDashboard = new Set(expressions().flatMap(({ expr }) => metricsOf(expr).map(base)));
    const ours = new Set([...(await exposedMetricNames())].filter((n) => n.startsWith('tow_and_go_')).map(base));
    for (const name of ours) expect(onDashboard, name).toContain(name);
  });
});
