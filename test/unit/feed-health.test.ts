import { describe, expect, it } from 'vitest';
import { FeedHealth } from '../../src/feed-health.ts';

describe('FeedHealth', () => {
  it('flags a last_modified older than the previous record of the partition', () => {
    const f = new FeedHealth(0);
    expect(f.observe(0, '5', 100)).toEqual({ backwards: false, gap: false });
    expect(f.observe(0, '6', 90)).toEqual({ backwards: true, gap: false });
    expect(f.observe(0, '7', 90)).toEqual({ backwards: false, gap: false });
  });

  it('flags a gap longer than the cadence, and only when a cadence is set', () => {
    const on = new FeedHealth(60);
    on.observe(1, '0', 1000);
    expect(on.observe(1, '1', 1060).gap).toBe(false);
    expect(on.observe(1, '2', 1121).gap).toBe(true);
    const off = new FeedHealth(0);
    off.observe(1, '0', 1000);
    expect(off.observe(1, '1', 999_999).gap).toBe(false);
  });

  it('keeps partitions apart', () => {
    const f = new FeedHealth(10);
    f.observe(0, '0', 1000);
    f.observe(1, '0', 50);
    expect(f.observe(0, '1', 1005)).toEqual({ backwards: false, gap: false });
    expect(f.observe(1, '1', 55)).toEqual({ backwards: false, gap: false });
  });

  it('compares only consecutive offsets: no false alarm across a hole, a late landing or a redelivery', () => {
    const f = new FeedHealth(10);
    f.observe(0, '0', 1000);
    // A hole (dead-lettered record, rebalance): the pair is not compared, the baseline moves.
    expect(f.observe(0, '5', 5000)).toEqual({ backwards: false, gap: false });
    // Offset 3 lands late (in-flight window): ignored, and not the baseline.
    expect(f.observe(0, '3', 10)).toEqual({ backwards: false, gap: false });
    // A redelivery of 5 after a stall.
    expect(f.observe(0, '5', 5000)).toEqual({ backwards: false, gap: false });
    expect(f.observe(0, '6', 4999)).toEqual({ backwards: true, gap: false });
  });
});
