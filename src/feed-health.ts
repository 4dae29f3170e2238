/**
 * Feed health: what consumer lag cannot show, because the feed itself misbehaves while the
 * consumer keeps up. Per partition, it compares each landed snapshot's `last_modified` with the one
 * landed just before it in the partition:
 * - backwards: the newer record carries an older `last_modified` (upstream clock or replay trouble);
 * - gap: the two are further apart than the expected cadence (upstream went quiet for a while).
 *
 * Only records at consecutive offsets are compared. Records land out of offset order inside the
 * in-flight window, a redelivery repeats offsets, and a rebalance or a dead-lettered record leaves
 * holes; comparing across any of those could raise a false alarm, so those pairs are skipped. The
 * counts are therefore a lower bound, never a false positive.
 */
export interface FeedObservation {
  readonly backwards: boolean;
  readonly gap: boolean;
}

const NOTHING: FeedObservation = { backwards: false, gap: false };

export class FeedHealth {
  readonly #last = new Map<number, { readonly offset: bigint; readonly lastModified: number }>();
  readonly #cadenceSeconds: number;

  /** `cadenceSeconds` 0 turns gap detection off (the default: not every feed has a cadence). */
  constructor(cadenceSeconds: number) {
    this.#cadenceSeconds = cadenceSeconds;
  }

  observe(partition: number, offset: string, lastModified: number): FeedObservation {
    const at = BigInt(offset);
    const previous = this.#last.get(partition);
    // An older or repeated offset landed late: it is neither compared nor made the baseline.
    if (previous !== undefined && at <= previous.offset) return NOTHING;
    this.#last.set(partition, { offset: at, lastModified });
    if (previous === undefined || at !== previous.offset + 1n) return NOTHING;
    const step = lastModified - previous.lastModified;
    return { backwards: step < 0, gap: this.#cadenceSeconds > 0 && step > this.#cadenceSeconds };
  }
}
