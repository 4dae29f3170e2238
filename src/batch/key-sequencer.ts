/**
 * The keyed sequencer of one batch, or of a partition's run of batches: records finish out of
 * order, but two records that write the
 * same object key must write in offset order, so that the first snapshot of a `last_modified` is
 * the one kept. The key is only known once a record is decoded, so a record takes its turn then.
 *
 * A record that gives up without finishing (its partition stalled or was revoked) is *abandoned*:
 * it blocks every later record of the batch that has its key, and when its key was never learned
 * (it failed before decoding) it blocks every later record, since any of them might share it.
 * A record that will write nothing (dead-lettered, skipped) is *released*: later ones go ahead.
 */
type Ending = 'finished' | 'released' | 'abandoned';

function signal(): { promise: Promise<void>; fire: () => void } {
  let fire: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}

class Entry {
  key: string | undefined;
  ending: Ending | undefined;
  /** Fires once the key is known or the record ended without one. */
  readonly decided = signal();
  readonly ended = signal();

  readonly index: number;

  constructor(index: number) {
    this.index = index;
  }

  learn(key: string): void {
    this.key = key;
    this.decided.fire();
  }

  end(ending: Ending): void {
    if (this.ending !== undefined) return;
    this.ending = ending;
    this.decided.fire();
    this.ended.fire();
  }
}

export interface KeyTurn {
  /** Waits for every earlier same-key record; false: an earlier one was abandoned, so give up. */
  claim(key: string): Promise<boolean>;
  /** This record wrote its object: later same-key records may go. */
  finish(): void;
  /** This record writes nothing: later records need not wait for it. */
  release(): void;
  /** This record gave up unfinished: later same-key records (or all, if its key is unknown) must not write. */
  abandon(): void;
}

/**
 * Cost per claim is bounded by the records in flight, not by the batch: a claim waits only for the
 * records that were still undecided when its turn was made (at most the in-flight window) and for
 * the nearest earlier record that claimed the same key (which itself waited for the ones before it).
 */
export class KeySequencer {
  #count = 0;
  /** Records whose key is not known yet and which have not ended. */
  readonly #undecided = new Set<Entry>();
  /** Per key, the records that claimed it, in claim order (usually one). */
  readonly #byKey = new Map<string, Entry[]>();
  /** Set once a record is abandoned before its key was known: every later record must give up. */
  #poisoned = false;

  /** A turn for the next record of the batch, in offset order. */
  next(): KeyTurn {
    const entry = new Entry(this.#count++);
    const blocked = this.#poisoned;
    const undecided = [...this.#undecided];
    this.#undecided.add(entry);
    const settle = (ending: Ending): void => {
      if (entry.ending !== undefined) return;
      this.#undecided.delete(entry);
      if (ending === 'abandoned' && entry.key === undefined) this.#poisoned = true;
      entry.end(ending);
      // A record that ended well needs no remembering: a later claim of its key has nothing to wait
      // for. Forgetting it keeps a long-lived sequencer's memory to what is in flight (and abandoned).
      if (ending !== 'abandoned' && entry.key !== undefined) this.#forget(entry.key, entry);
    };
    return {
      claim: async (key) => {
        entry.learn(key);
        this.#undecided.delete(entry);
        const same = this.#byKey.get(key);
        if (same === undefined) this.#byKey.set(key, [entry]);
        else same.push(entry);
        if (blocked) return false;
        // Earlier records that did not know their key yet may turn out to share it.
        for (const e of undecided) {
          await e.decided.promise;
          if (e.ending === 'released' || (e.key !== undefined && e.key !== key)) continue;
          await e.ended.promise;
          if (e.ending === 'abandoned') return false;
        }
        // The nearest earlier record that claimed the key; it waited for the ones before it.
        const nearest = this.#byKey
          .get(key)
          ?.filter((e) => e.index < entry.index)
          .reduce<Entry | undefined>((best, e) => (best === undefined || e.index > best.index ? e : best), undefined);
        if (nearest !== undefined) {
          await nearest.ended.promise;
          if (nearest.ending === 'abandoned') return false;
        }
        return true;
      },
      finish: () => settle('finished'),
      release: () => settle('released'),
      abandon: () => settle('abandoned'),
    };
  }

  /** Keys with records still remembered (in flight or abandoned); for tests of the bound. */
  get rememberedKeys(): number {
    return this.#byKey.size;
  }

  #forget(key: string, entry: Entry): void {
    const same = this.#byKey.get(key);
    if (same === undefined) return;
    const rest = same.filter((e) => e !== entry);
    if (rest.length === 0) this.#byKey.delete(key);
    else this.#byKey.set(key, rest);
  }
}
