import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.ts';

describe('Metrics', () => {
  it('renders Prometheus text with HELP, TYPE and one line per label set', () => {
    const m = new Metrics();
    m.records.add({ outcome: 'created' }, 2);
    m.records.add({ outcome: 'created' }, 1);
    m.records.add({ outcome: 'dead_lettered' }, 1);
    const text = m.render();
    expect(text).toContain('# HELP tow_and_go_records_total Records finished, by outcome.\n# TYPE tow_and_go_records_total counter\n');
    expect(text).toContain('tow_and_go_records_total{outcome="created"} 3\n');
    expect(text).toContain('tow_and_go_records_total{outcome="dead_lettered"} 1\n');
    expect(m.records.total()).toBe(4);
  });

  it('renders unlabelled series without braces', () => {
    const m = new Metrics();
    m.commits.add({}, 5);
    expect(m.render()).toContain('\ntow_and_go_commits_total 5\n');
  });

  it('neutralises quotes, backslashes and newlines in label values', () => {
    const m = new Metrics();
    m.retries.add({ code: 'a"b\\c\nd' }, 1);
    expect(m.render()).toContain('tow_and_go_retries_total{code="a_b_c_d"} 1');
  });

  it('clears a gauge so that partitions no longer owned do not linger', () => {
    const m = new Metrics();
    m.lag.set({ partition: '0' }, 10);
    m.lag.set({ partition: '1' }, 3);
    m.lag.clear();
    m.lag.set({ partition: '1' }, 2);
    expect(m.render()).not.toContain('partition="0"');
    expect(m.lag.get({ partition: '1' })).toBe(2);
  });
});
