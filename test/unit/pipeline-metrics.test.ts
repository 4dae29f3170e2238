import { describe, expect, it } from 'vitest';
import { NOW, once, record, setup } from '../support/pipeline-fakes.ts';

/** The metrics of a record that lands, and none of them for one that is dead-lettered. */
describe('Pipeline metrics of landed records', () => {
  it('observes write latency, end-to-end latency, size, freshness and last success for created and unchanged', async () => {
    const { pipeline, metrics } = setup();
    const links = [1, 2, 3].map((link_id) => ({ link_id, segment_id: null }));
    await expect(once(pipeline, record('1', NOW, { links }))).resolves.toBe('created');
    await expect(once(pipeline, record('2', NOW, { links }))).resolves.toBe('unchanged');
    const text = await metrics.render();
    expect(text).toContain('tow_and_go_s3_write_duration_seconds_count 2\n');
    expect(text).toContain('tow_and_go_end_to_end_seconds_count 2\n');
    // Three links each: both in the le="10" bucket, none in le="1".
    expect(text).toContain('tow_and_go_snapshot_links_bucket{le="1"} 0\n');
    expect(text).toContain('tow_and_go_snapshot_links_bucket{le="10"} 2\n');
    expect(text).toContain('tow_and_go_snapshot_bytes_count 2\n');
    expect(metrics.newestLastModified.get()).toBe(NOW);
    expect(metrics.lastSuccess.get()).toBeGreaterThan(NOW);
  });

  it('counts a backwards last_modified between consecutive offsets of a partition', async () => {
    const { pipeline, metrics } = setup();
    await once(pipeline, record('7', NOW, { partition: 2 }));
    await once(pipeline, record('8', NOW - 60, { partition: 2 }));
    expect(metrics.backwards.get({ partition: '2' })).toBe(1);
    expect(metrics.newestLastModified.get()).toBe(NOW);
  });

  it('records none of them for a dead-lettered record', async () => {
    const { pipeline, metrics } = setup();
    await expect(once(pipeline, { ...record('1'), value: null })).resolves.toBe('dead_lettered');
    const text = await metrics.render();
    expect(text).toContain('tow_and_go_end_to_end_seconds_count 0\n');
    expect(text).toContain('tow_and_go_snapshot_bytes_count 0\n');
    expect(metrics.lastSuccess.get()).toBe(0);
  });
});
