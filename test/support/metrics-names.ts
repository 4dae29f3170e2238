/**
 * The metric names a running service exposes on /metrics: a Metrics instance as src/main.ts creates
 * it (process metrics on), after one of each outcome and every labelled series set once, so that
 * every metric has at least one sample line. Used by the alert-rule and dashboard tests to check
 * that what they query exists.
 */
import { Metrics } from '../../src/metrics.ts';

const OUTCOMES = ['created', 'unchanged', 'overwritten', 'dead_lettered', 'skipped', 'would_create', 'would_conflict'];

/**
 * Every series name: those with a sample, and those declared by a `# TYPE` line (a labelled metric
 * with no sample yet, such as nodejs_gc_duration_seconds before the first GC), histograms as their
 * _bucket, _sum and _count series.
 */
export async function exposedMetricNames(): Promise<Set<string>> {
  const m = new Metrics({ expectedCadenceSeconds: 1, processMetrics: true });
  for (const outcome of OUTCOMES) m.records.add({ outcome }, 1);
  m.deadLetters.add({ code: 'PAYLOAD_NULL' }, 1);
  m.retries.add({ code: 'S3_UNAVAILABLE' }, 1);
  m.lag.set({ partition: '0' }, 1);
  m.sinceProgress.set({ partition: '0' }, 1);
  m.stalled.set({}, 0);
  m.writeLatency.observe(0.01);
  const now = Date.now();
  m.landed({ partition: 0, offset: '0', timestampMs: now, lastModified: 10, links: 1, bytes: 1, nowMs: now });
  // Backwards, then a gap longer than the 1 s cadence: both per-partition counters get a sample.
  m.landed({ partition: 0, offset: '1', timestampMs: now, lastModified: 5, links: 1, bytes: 1, nowMs: now });
  m.landed({ partition: 0, offset: '2', timestampMs: now, lastModified: 100, links: 1, bytes: 1, nowMs: now });
  const text = await m.render();
  const names = new Set<string>();
  for (const [, name = ''] of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(name);
  for (const [, name = '', type] of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    for (const suffix of type === 'histogram' ? ['_bucket', '_sum', '_count'] : ['']) names.add(`${name}${suffix}`);
  }
  return names;
}
