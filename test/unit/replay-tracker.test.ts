import { describe, expect, it } from 'vitest';
import { ReplayTracker } from '../../src/replay-tracker.ts';

const settled = async (p: Promise<void>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10))]);

describe('ReplayTracker', () => {
  it('starts every partition at its start, and leaves empty ranges and partitions outside the replay alone', () => {
    const t = new ReplayTracker([
      { partition: 0, start: '5', end: '10' },
      { partition: 1, start: '7', end: '7' },
      { partition: 2, start: '9', end: '3' },
    ]);
    expect(t.remaining).toBe(1);
    expect(t.positions()).toEqual([{ partition: 0, offset: '5' }]);
    expect([0, 1, 2, 3].map((p) => t.wants(p))).toEqual([true, false, false, false]);
    expect(t.end(0)).toBe('10');
    expect(t.end(3)).toBeUndefined();
  });

  it('is done at once when there is nothing to replay', async () => {
    expect(await settled(new ReplayTracker([{ partition: 0, start: '4', end: '4' }]).done)).toBe(true);
    expect(await settled(new ReplayTracker([]).done)).toBe(true);
  });

  it('finishes a partition when its position reaches the end, not when a record at end - 1 arrives', async () => {
    // Offsets 0-4 data, 5 a commit marker, 6-8 an aborted transaction, 9 its abort marker.
    const t = new ReplayTracker([{ partition: 0, start: '0', end: '10' }]);
    expect(t.advanceTo(0, '5')).toBe(false); // the pipeline's checkpoint after offset 4
    expect(t.advanceTo(0, '6')).toBe(false); // the data batch's last offset: the commit marker
    expect(await settled(t.done)).toBe(false);
    expect(t.advanceTo(0, '10')).toBe(true); // a batch kafkajs filtered to nothing, last offset 9
    expect(t.remaining).toBe(0);
    expect(t.wants(0)).toBe(false);
    expect(await settled(t.done)).toBe(true);
  });

  it('finishes a partition whose last offsets were compacted away when a later batch passes the end', () => {
    const t = new ReplayTracker([{ partition: 0, start: '0', end: '100' }]);
    t.advanceTo(0, '90');
    // The next surviving record is at 130: that batch's last offset is past the end.
    expect(t.advanceTo(0, '131')).toBe(true);
    expect(t.progress()).toEqual({ done: 100, total: 100 });
  });

  it('never moves a position back, and counts a partition finished once', () => {
    const t = new ReplayTracker([
      { partition: 0, start: '0', end: '10' },
      { partition: 1, start: '0', end: '10' },
    ]);
    t.advanceTo(0, '8');
    expect(t.advanceTo(0, '3')).toBe(false);
    expect(t.positions()).toEqual([
      { partition: 0, offset: '8' },
      { partition: 1, offset: '0' },
    ]);
    expect(t.advanceTo(0, '10')).toBe(true);
    expect(t.advanceTo(0, '12')).toBe(false);
    expect(t.remaining).toBe(1);
    expect(t.advanceTo(7, '100')).toBe(false);
    expect(t.remaining).toBe(1);
  });

  it('is done only when the last unfinished partition finishes', async () => {
    const t = new ReplayTracker([
      { partition: 0, start: '0', end: '1' },
      { partition: 1, start: '3', end: '5' },
    ]);
    t.advanceTo(1, '5');
    expect(await settled(t.done)).toBe(false);
    t.advanceTo(0, '1');
    expect(await settled(t.done)).toBe(true);
  });

  it('reports progress in offsets from each start, with the position as it moves', () => {
    const t = new ReplayTracker([
      { partition: 0, start: '100', end: '200' },
      { partition: 1, start: '0', end: '50' },
      { partition: 2, start: '9', end: '9' },
    ]);
    expect(t.progress()).toEqual({ done: 0, total: 150 });
    t.advanceTo(0, '150');
    t.advanceTo(1, '10');
    expect(t.progress()).toEqual({ done: 60, total: 150 });
  });

  it('handles offsets beyond 2^53 exactly', () => {
    const t = new ReplayTracker([{ partition: 0, start: '9007199254740993', end: '9007199254740995' }]);
    expect(t.advanceTo(0, '9007199254740994')).toBe(false);
    expect(t.positions()).toEqual([{ partition: 0, offset: '9007199254740994' }]);
    expect(t.advanceTo(0, '9007199254740995')).toBe(true);
  });
});
