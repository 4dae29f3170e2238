/**
 * The keyed sequencer of one batch: records finish out of order, but two records that write the
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

export class KeySequencer {
  readonly #entries: Entry[] = [];

  /** A turn for the next record of the batch, in offset order. */
  next(): KeyTurn {
    const entry = new Entry();
    const earlier = [...this.#entries];
    this.#entries.push(entry);
    return {
      claim: async (key) => {
        entry.learn(key);
        for (const e of earlier) {
          await e.decided.promise;
          if (e.ending === 'released') continue;
          if (e.key !== undefined && e.key !== key) continue;
          // Same key, or an abandoned record whose key nobody will ever know.
          await e.ended.promise;
          if (e.ending === 'abandoned') return false;
        }
        return true;
      },
      finish: () => entry.end('finished'),
      release: () => entry.end('released'),
      abandon: () => entry.end('abandoned'),
    };
  }
}
