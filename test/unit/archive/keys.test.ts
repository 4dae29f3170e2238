import { describe, expect, it } from 'vitest';
import { listingBounds, parseSnapshotKey, planWindows, snapshotKey, splitByDigits } from '../../../src/archive/keys.ts';

describe('snapshot keys', () => {
  it('parses <prefix><n>.json and nothing else under the prefix', () => {
    expect(parseSnapshotKey('p/', 'p/1684216515.json')).toBe(1684216515);
    expect(parseSnapshotKey('p/', 'p/946684800.json')).toBe(946684800);
    expect(parseSnapshotKey('p/', 'p/0.json')).toBe(0);
    for (const other of [
      'p/latest.json',
      'p/latest.json.lock',
      'p/1684216515.json-0f8b1c2e-3d4a-4b5c-8d6e-7f8091a2b3c4',
      'p/01684216515.json',
      'p/1684216515.json.gz',
      'p/1684216515',
      'p/sub/1684216515.json',
      'q/1684216515.json',
      'p/99999999999999999999.json',
    ]) {
      expect(parseSnapshotKey('p/', other), other).toBeUndefined();
    }
    expect(snapshotKey('p/', 1684216515)).toBe('p/1684216515.json');
  });
});

describe('search windows', () => {
  it('are disjoint, newest first, widen by 8 and stop at the floor', () => {
    const w = planWindows(1_000_000, { firstSeconds: 3600, growth: 8, floor: 900_000 });
    expect(w).toEqual([
      { lo: 996_401, hi: 1_000_000 },
      { lo: 967_601, hi: 996_400 },
      { lo: 900_000, hi: 967_600 },
    ]);
  });

  it('reach the floor (by default the default MIN_LAST_MODIFIED) from a current time in a handful of windows', () => {
    expect(planWindows(1_764_400_000).at(-1)?.lo).toBe(946_684_800);
    const w = planWindows(1_764_400_000, { firstSeconds: 3600, growth: 8, floor: 0 });
    expect(w.at(-1)?.lo).toBe(0);
    expect(w.length).toBeLessThanOrEqual(9);
    for (let i = 1; i < w.length; i++) expect(w[i]?.hi).toBe((w[i - 1]?.lo ?? 0) - 1);
  });

  it('is empty below the floor, and floors a fractional t', () => {
    expect(planWindows(5, { firstSeconds: 3600, growth: 8, floor: 10 })).toEqual([]);
    expect(planWindows(100.9, { firstSeconds: 10, growth: 8, floor: 0 })[0]).toEqual({ lo: 91, hi: 100 });
  });
});

describe('digit classes', () => {
  it('cut a range at each power of ten, highest class first', () => {
    expect(splitByDigits({ lo: 946_684_800, hi: 1_000_003_599 })).toEqual([
      { lo: 1_000_000_000, hi: 1_000_003_599 },
      { lo: 946_684_800, hi: 999_999_999 },
    ]);
    expect(splitByDigits({ lo: 0, hi: 1234 })).toEqual([
      { lo: 1000, hi: 1234 },
      { lo: 100, hi: 999 },
      { lo: 10, hi: 99 },
      { lo: 0, hi: 9 },
    ]);
    expect(splitByDigits({ lo: 5, hi: 7 })).toEqual([{ lo: 5, hi: 7 }]);
  });

  it('list from just before <lo>.json to <hi>.json, and byte order is numeric order inside a class', () => {
    const { startAfter, last } = listingBounds('p/', { lo: 1_700_000_000, hi: 1_700_003_599 });
    const inside = ['p/1700000000.json', 'p/1700000001.json', 'p/1700003599.json'];
    for (const key of inside) expect(key > startAfter && key <= last, key).toBe(true);
    for (const key of ['p/1699999999.json', 'p/1700003600.json', 'p/latest.json']) expect(key > startAfter && key <= last, key).toBe(false);
    // A 9-digit key can sort between two 10-digit ones: the class filter, not the order, excludes it.
    expect('p/999999999.json' > 'p/1700000000.json').toBe(true);
  });

  it('keep current 10-digit keys out of the 9-digit listing from the default floor up, not from 0 up', () => {
    const inside = (range: { lo: number; hi: number }, key: string) => {
      const { startAfter, last } = listingBounds('p/', range);
      return key > startAfter && key <= last;
    };
    const nineDigits = (floor: number) => splitByDigits({ lo: floor, hi: 1_000_003_599 }).find((r) => r.hi === 999_999_999);
    expect(inside(nineDigits(946_684_800) ?? { lo: 1, hi: 0 }, 'p/1700000000.json')).toBe(false);
    // From 0, that listing would page through every current key (the cost the default floor avoids).
    expect(inside(nineDigits(0) ?? { lo: 1, hi: 0 }, 'p/1700000000.json')).toBe(true);
  });
});
