/**
 * ops/prometheus/alerts.yml, checked by the real promtool (Debian's prometheus package, installed by
 * scripts/ensure-test-tools.sh): the rules parse, every alert fires and does not fire in its promtool
 * unit tests, every metric it queries exists in the service's /metrics, and every alert has its
 * runbook entry in the README. Nothing is skipped when promtool is missing: the test fails and says
 * how to install it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposedMetricNames } from '../support/metrics-names.ts';

const DIR = join(import.meta.dirname, '../../ops/prometheus');
const RULES = readFileSync(join(DIR, 'alerts.yml'), 'utf8');
const TESTS = readFileSync(join(DIR, 'alerts.test.yml'), 'utf8');
const README = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const ALERTS = [...RULES.matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);

function promtool(...args: string[]): string {
  const run = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if (run.error !== undefined) {
    throw new Error(`promtool could not run (${run.error.message}); install it with scripts/ensure-test-tools.sh (Debian package prometheus)`);
  }
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`promtool ${args.join(' ')} exited ${run.status}:\n${output}`);
  return output;
}

describe('ops/prometheus/alerts.yml', () => {
  it('lists the alerts the runbook documents', () => {
    expect(ALERTS).toEqual([
      'TowAndGoStalled',
      'TowAndGoDeadLetters',
      'TowAndGoLagGrowing',
      'TowAndGoFeedStale',
      'TowAndGoInstanceDown',
      'TowAndGoRestarting',
      'TowAndGoNoInstance',
    ]);
  });

  it('passes promtool check rules', () => {
    expect(promtool('check', 'rules', 'alerts.yml')).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  it('passes promtool test rules', () => {
    expect(promtool('test', 'rules', 'alerts.test.yml')).toContain('SUCCESS');
  });

  it('has a promtool case where each alert fires and one where it does not', () => {
    const quiet = new Set([...TESTS.matchAll(/alertname: (\w+)\n\s+exp_alerts: \[\]\n/g)].map((m) => m[1]));
    const fires = new Set([...TESTS.matchAll(/alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels:/g)].map((m) => m[1]));
    for (const alert of ALERTS) {
      expect(quiet, alert).toContain(alert);
      expect(fires, alert).toContain(alert);
    }
  });

  it('queries only metrics that the service exposes (up is the scrape itself)', async () => {
    const exposed = await exposedMetricNames();
    const queried = new Set([...RULES.matchAll(/\b([a-z_][a-z0-9_]*)\{job=/g)].map((x) => x[1]));
    expect(queried.size).toBeGreaterThan(5);
    for (const name of queried) if (name !== 'up') expect(exposed, name).toContain(name);
  });

  it('has a runbook entry in the README for every alert', () => {
    const section = README.slice(README.indexOf('### Alerts'), README.indexOf('\n## ', README.indexOf('### Alerts')));
    for (const alert of ALERTS) expect(section, alert).toContain(`\`${alert}\``);
  });
});
