import { describe, expect, it } from 'vitest';
import { type Landed, Metrics } from '../../src/metrics.ts';

const landed = (over: Partial<Landed> = {}): Landed => ({
  partition: 0,
  offset: '0',
  timestampMs: 1_000_000,
  lastModified: 1_700_000_000,
  links: 3,
  bytes: 100,
  nowMs: 1_002_500,
  ...over,
});

describe('Metrics', () => {
  it('renders Prometheus text with HELP, TYPE and one line per label set', async () => {
    const m = new Metrics();
    m.records.add({ outcome: 'created' }, 2);
    m.records.add({ outcome: 'created' }, 1);
    m.records.add({ outcome: 'dead_lettered' }, 1);
    const text = await m.render();
    expect(text).toContain('# HELP tow_and_go_records_total Records finished, by outcome.\n# TYPE tow_and_go_records_total counter\n');
    expect(text).toContain('tow_and_go_records_total{outcome="created"} 3\n');
    expect(text).toContain('tow_and_go_records_total{outcome="dead_lettered"} 1\n');
    expect(m.records.total()).toBe(4);
  });

  it('renders unlabelled series without braces', async () => {
    const m = new Metrics();
    m.commits.add({}, 5);
    expect(await m.render()).toContain('\ntow_and_go_commits_total 5\n');
  });

  it('neutralises quotes, backslashes and newlines in label values', async () => {
    const m = new Metrics();
    m.retries.add({ code: 'a"b\\c\nd' }, 1);
    expect(await m.render()).toContain('tow_and_go_retries_total{code="a_b_c_d"} 1');
  });

  it('clears a gauge so that partitions no longer owned do not linger', async () => {
    const m = new Metrics();
    m.lag.set({ partition: '0' }, 10);
    m.lag.set({ partition: '1' }, 3);
    m.lag.clear();
    m.lag.set({ partition: '1' }, 2);
    const text = await m.render();
    expect(text).not.toContain('partition="0"');
    expect(text).toContain('tow_and_go_consumer_lag_records{partition="1"} 2\n');
    expect(m.lag.get({ partition: '1' })).toBe(2);
  });

  it('runs the onRender hooks before every render', async () => {
    const m = new Metrics();
    let age = 0;
    m.onRender(() => m.sinceProgress.set({ partition: '4' }, ++age));
    await m.render();
    expect(await m.render()).toContain('tow_and_go_partition_seconds_since_progress{partition="4"} 2\n');
  });

  it('keeps separate series per instance (its own registry, not the global one)', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.commits.add({}, 1);
    expect(await b.render()).toContain('\ntow_and_go_commits_total 0\n');
  });

  it('records a landed record: end-to-end latency, size, freshness, last success', async () => {
    const m = new Metrics();
    m.landed(landed());
    m.landed(landed({ offset: '1', lastModified: 1_600_000_000, links: 2000, bytes: 70_000, nowMs: 2_000_000 }));
    const text = await m.render();
    expect(text).toContain('tow_and_go_end_to_end_seconds_bucket{le="2.5"} 1\n');
    expect(text).toContain('tow_and_go_end_to_end_seconds_sum 1002.5\n');
    expect(text).toContain('tow_and_go_snapshot_links_bucket{le="10"} 1\n');
    expect(text).toContain('tow_and_go_snapshot_bytes_count 2\n');
    // The newest last_modified, not the last one: the second record went backwards.
    expect(text).toContain('tow_and_go_newest_last_modified_seconds 1700000000\n');
    expect(text).toContain('tow_and_go_last_success_timestamp_seconds 2000\n');
    expect(text).toContain('tow_and_go_last_modified_backwards_total{partition="0"} 1\n');
  });

  it('counts feed gaps longer than the expected cadence, per partition', async () => {
    const m = new Metrics({ expectedCadenceSeconds: 60 });
    m.landed(landed({ partition: 2, offset: '10', lastModified: 1000 }));
    m.landed(landed({ partition: 2, offset: '11', lastModified: 1060 }));
    m.landed(landed({ partition: 2, offset: '12', lastModified: 1200 }));
    expect(m.feedGaps.get({ partition: '2' })).toBe(1);
    expect(await m.render()).toContain('tow_and_go_feed_gaps_total{partition="2"} 1\n');
  });

  it('observes S3 write latency in a histogram', async () => {
    const m = new Metrics();
    m.writeLatency.observe(0.03);
    expect(await m.render()).toContain('tow_and_go_s3_write_duration_seconds_bucket{le="0.05"} 1\n');
  });

  it('adds the process metrics when asked, with prom-client content type', async () => {
    const m = new Metrics({ processMetrics: true });
    const text = await m.render();
    for (const name of ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'process_start_time_seconds']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(m.contentType).toContain('text/plain');
    expect(await new Metrics().render()).not.toContain('process_resident_memory_bytes');
  });
});
