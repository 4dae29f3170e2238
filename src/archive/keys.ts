/**
 * Snapshot keys and the search windows of an as-of lookup. Pure: no I/O.
 *
 * Keys are `<prefix><last_modified>.json` with last_modified in decimal, no leading zeros
 * (objectKey in src/snapshot.ts). S3 lists keys in byte order, which equals numeric order only
 * among numbers with the same count of digits: `999999999.json` sorts after `1700000000.json`.
 * So every numeric range is cut into digit-length classes, and each class is listed on its own.
 */

import { objectKey } from '../snapshot.ts';

const SNAPSHOT_NAME = /^(0|[1-9][0-9]*)\.json$/;

/** `<prefix><n>.json`: the service's own key (objectKey), from a number. */
export function snapshotKey(prefix: string, lastModified: number): string {
  return objectKey(prefix, { last_modified: lastModified });
}

/**
 * The last_modified a key names, or undefined for anything else under the prefix: `latest.json`,
 * its lock, S3Proxy's temporary `<key>-<uuid>` files of a write in progress, stray files.
 */
export function parseSnapshotKey(prefix: string, key: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = SNAPSHOT_NAME.exec(key.slice(prefix.length));
  if (match?.[1] === undefined) return undefined;
  const n = Number(match[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function digitCount(n: number): number {
  return String(n).length;
}

/** An inclusive range of last_modified values. */
export interface Range {
  readonly lo: number;
  readonly hi: number;
}

export interface WindowPlan {
  /** The first window's width below t, seconds. */
  readonly firstSeconds: number;
  /** Each further window is this many times wider than the one before. */
  readonly growth: number;
  /** Nothing below this is searched (no snapshot can be older than MIN_LAST_MODIFIED). */
  readonly floor: number;
}

/** The service's default MIN_LAST_MODIFIED (2000-01-01): no snapshot it accepts is older. */
export const DEFAULT_FLOOR = 946_684_800;

/**
 * An hour first: at the usual one-minute cadence one page (~60 keys) holds the answer. The floor is
 * not 0 because of cost: a digit class's listing also returns the longer keys that sort inside it,
 * and the 9-digit class below 1e9 (down to 1e8) holds every current 10-digit key ("1700000000.json"
 * sorts between "100000000" and "999999999.json"). Searching down to 0 would list the whole prefix
 * once whenever nothing is older than t; from 946684800 up, no current key sorts inside.
 */
export const DEFAULT_PLAN: WindowPlan = { firstSeconds: 3600, growth: 8, floor: DEFAULT_FLOOR };

/**
 * Disjoint windows below and including t, newest first: [t-w+1, t], then 8w wide below that, …,
 * down to the floor. Searching stops at the first window that holds a snapshot, so the usual lookup
 * lists one small window, and a lookup before the first snapshot costs about log8(t/3600) lists.
 */
export function planWindows(t: number, plan: WindowPlan = DEFAULT_PLAN): Range[] {
  const windows: Range[] = [];
  let hi = Math.floor(t);
  let width = plan.firstSeconds;
  while (hi >= plan.floor) {
    const lo = Math.max(plan.floor, hi - width + 1);
    windows.push({ lo, hi });
    hi = lo - 1;
    width *= plan.growth;
  }
  return windows;
}

/**
 * A range cut at each power of ten, highest digit class first: within one class byte order is
 * numeric order, and every number of a higher class is greater than any of a lower one.
 */
export function splitByDigits(range: Range): Range[] {
  const parts: Range[] = [];
  let hi = range.hi;
  while (hi >= range.lo) {
    const classLow = hi < 10 ? 0 : 10 ** (digitCount(hi) - 1);
    const lo = Math.max(range.lo, classLow);
    parts.push({ lo, hi });
    hi = lo - 1;
  }
  return parts;
}

/**
 * Where a listing of one digit class starts and stops. `<prefix><lo>` sorts just before
 * `<prefix><lo>.json` (a string sorts before its extensions) and after every key of the class below
 * lo; `<prefix><hi>.json` is the last key of the class in range. Keys of other digit counts can sort
 * in between; the caller filters them out by parsing.
 */
export function listingBounds(prefix: string, range: Range): { startAfter: string; last: string } {
  return { startAfter: `${prefix}${range.lo}`, last: snapshotKey(prefix, range.hi) };
}
