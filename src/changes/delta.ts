/**
 * The difference between two snapshots' link lists. Pure: no I/O, no clock.
 *
 * A snapshot is read as a map link_id → segment_id. The validator (src/snapshot.ts) does not reject
 * a link_id that appears twice, so that has to mean something here: the **last** occurrence wins,
 * which is what applying the snapshot's links in order as upserts keyed by link_id (as a MongoDB
 * sync does) leaves behind. The earlier occurrences are counted in `*_duplicates`, never diffed.
 *
 * Sort-merge, not a Map: both lists are put in link_id order (free when they already are, as in
 * the seed example; a linear radix sort when not), then walked once side by side, so the output
 * comes out in link_id order without a final sort and nothing is hashed. bench/delta.ts measures
 * it against a Map and a naive Set diff (bench/README.md, "Change stream: delta cost").
 */
import type { Link } from '../snapshot.ts';

export interface GainedLink {
  readonly link_id: number;
  readonly segment_id: number | null;
}

export interface SegmentChange {
  readonly link_id: number;
  readonly from: number | null;
  readonly to: number | null;
}

export interface Delta {
  /** Links in current and not in previous, with their segment, by link_id. */
  readonly gained: GainedLink[];
  /** Links in previous and not in current, by link_id. */
  readonly lost: number[];
  /** Links in both whose segment differs (null counts as a value), by link_id. */
  readonly segment_changed: SegmentChange[];
  /** Distinct link_ids of each side: the size of the map a consumer holds. */
  readonly previous_links: number;
  readonly current_links: number;
  /** Entries left out because a later entry had the same link_id. */
  readonly previous_duplicates: number;
  readonly current_duplicates: number;
}

/** Distinct links in link_id order: `index[k]` is the position in the input of the k-th smallest id. */
interface Ordered {
  readonly ids: Float64Array;
  readonly index: Uint32Array;
  readonly duplicates: number;
}

function ordered(links: readonly Link[]): Ordered {
  const n = links.length;
  const ids = new Float64Array(n);
  let ascending = true;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const id = (links[i] as Link).link_id;
    ids[i] = id;
    if (id > max) max = id;
    else ascending = false;
  }
  if (ascending) return { ids, index: identity(n), duplicates: 0 };
  return dedupeKeepLast(...radixSort(ids, max));
}

function identity(n: number): Uint32Array {
  const index = new Uint32Array(n);
  for (let i = 0; i < n; i++) index[i] = i;
  return index;
}

const DIGIT_BITS = 11;
const RADIX = 1 << DIGIT_BITS;

/**
 * LSD radix sort of the ids, carrying each one's input position: 11 bits a pass, only as many
 * passes as the largest id needs (3 for today's ~2^25 link ids, 5 at most for 2^53). Linear; on
 * 200,000 shuffled links about 4 times faster than the native sort of a Float64Array of ids packed
 * with their index (the first version), and a comparator sort of indices was slower still. Stable, so equal ids stay in input order.
 * Link ids are positive integers below 2^53 (zod's z.int()), so every digit is exact: dividing a
 * double by a power of two is exact, and `& (RADIX - 1)` takes the low bits of the integer part.
 */
function radixSort(input: Float64Array, max: number): [Float64Array, Uint32Array] {
  const n = input.length;
  let ids: Float64Array = input;
  let index: Uint32Array = identity(n);
  let spareIds: Float64Array = new Float64Array(n);
  let spareIndex: Uint32Array = new Uint32Array(n);
  const counts = new Uint32Array(RADIX);
  for (let scale = 1; scale <= max; scale *= RADIX) {
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const d = Math.floor((ids[i] as number) / scale) & (RADIX - 1);
      counts[d] = (counts[d] as number) + 1;
    }
    let total = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = counts[d] as number;
      counts[d] = total;
      total += c;
    }
    for (let i = 0; i < n; i++) {
      const id = ids[i] as number;
      const d = Math.floor(id / scale) & (RADIX - 1);
      const at = counts[d] as number;
      counts[d] = at + 1;
      spareIds[at] = id;
      spareIndex[at] = index[i] as number;
    }
    [ids, spareIds] = [spareIds, ids];
    [index, spareIndex] = [spareIndex, index];
  }
  return [ids, index];
}

/** Within a run of equal ids (in input order), keeps only the last entry. Compacts in place. */
function dedupeKeepLast(ids: Float64Array, index: Uint32Array): Ordered {
  const n = ids.length;
  let out = 0;
  for (let k = 0; k < n; k++) {
    if (k + 1 < n && ids[k + 1] === ids[k]) continue;
    ids[out] = ids[k] as number;
    index[out] = index[k] as number;
    out++;
  }
  return { ids: ids.subarray(0, out), index: index.subarray(0, out), duplicates: n - out };
}

/**
 * What changed from `previous` to `current`. Every output list is in ascending link_id order, so
 * the same two snapshots always give the same delta, whatever order their links came in.
 */
export function computeDelta(previous: readonly Link[], current: readonly Link[]): Delta {
  const p = ordered(previous);
  const c = ordered(current);
  const gained: GainedLink[] = [];
  const lost: number[] = [];
  const segment_changed: SegmentChange[] = [];
  const pn = p.ids.length;
  const cn = c.ids.length;
  let i = 0;
  let j = 0;
  while (i < pn && j < cn) {
    const pid = p.ids[i] as number;
    const cid = c.ids[j] as number;
    if (pid < cid) {
      lost.push(pid);
      i++;
    } else if (pid > cid) {
      gained.push({ link_id: cid, segment_id: (current[c.index[j] as number] as Link).segment_id });
      j++;
    } else {
      const from = (previous[p.index[i] as number] as Link).segment_id;
      const to = (current[c.index[j] as number] as Link).segment_id;
      if (from !== to) segment_changed.push({ link_id: cid, from, to });
      i++;
      j++;
    }
  }
  for (; i < pn; i++) lost.push(p.ids[i] as number);
  for (; j < cn; j++) gained.push({ link_id: c.ids[j] as number, segment_id: (current[c.index[j] as number] as Link).segment_id });
  return {
    gained,
    lost,
    segment_changed,
    previous_links: pn,
    current_links: cn,
    previous_duplicates: p.duplicates,
    current_duplicates: c.duplicates,
  };
}

/** The delta against nothing: every distinct link is gained. Same rules (last duplicate wins, link_id order). */
export function wholeSnapshotDelta(current: readonly Link[]): Delta {
  return computeDelta([], current);
}
